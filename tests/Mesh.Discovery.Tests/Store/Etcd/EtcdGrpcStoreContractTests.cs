using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

[RequiresEtcd]
public sealed class EtcdGrpcStoreContractTests(EtcdFixture fixture) : StoreContractTests, IClassFixture<EtcdFixture>, IAsyncLifetime
{
    private readonly string _prefix = $"/mesh-test-{Guid.NewGuid():N}/";
    private readonly List<EtcdGrpcStore> _opened = [];

    private EtcdGrpcStore New()
    {
        // Both writers act as node n1's daemon: the contract's tasks run on n1, and only n1's own daemon makes it alive.
        var store = new EtcdGrpcStore(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = _prefix, Node = "n1" });
        _opened.Add(store);
        return store;
    }

    protected override Task<IClusterStore> OpenAsync() => Task.FromResult<IClusterStore>(New());

    protected override IClusterStore SecondWriter(IClusterStore store) => New(); // a second daemon: its own client, same keys

    protected override async Task<IClusterStore> LoseHistoryAsync(IClusterStore store)
    {
        var etcd = (EtcdGrpcStore)store;
        await etcd.CompactAsync((await etcd.GetStateAsync()).Revision);
        return store;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }
    }
}
