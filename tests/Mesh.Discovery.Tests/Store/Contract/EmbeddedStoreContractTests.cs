using Mesh.Discovery.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Tests.Store.Contract;

public sealed class EmbeddedStoreContractTests : StoreContractTests, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-contract-").FullName;

    protected override Task<IClusterStore> OpenAsync() => Task.FromResult<IClusterStore>(new EmbeddedStore(_dir, NullLogger<EmbeddedStore>.Instance));

    protected override IClusterStore SecondWriter(IClusterStore store) => store; // one holder; other daemons go through its API

    protected override Task<IClusterStore> LoseHistoryAsync(IClusterStore store) => OpenAsync(); // history lives in memory only

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
