using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

[RequiresEtcd]
public sealed class EtcdStoreContractTests(EtcdFixture fixture) : StoreContractTests, IClassFixture<EtcdFixture>, IAsyncLifetime
{
    private readonly string _prefix = $"/mesh-test-{Guid.NewGuid():N}/";
    private readonly List<EtcdStore> _opened = [];

    private EtcdStore New()
    {
        // Both writers act as node n1's daemon: the contract's tasks run on n1, and only n1's own daemon makes it alive.
        var store = new EtcdStore(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = _prefix, Node = "n1" });
        _opened.Add(store);
        return store;
    }

    protected override Task<IClusterStore> OpenAsync() => Task.FromResult<IClusterStore>(New());

    protected override IClusterStore SecondWriter(IClusterStore store) => New(); // a second daemon: its own client, same keys

    protected override async Task<IClusterStore> LoseHistoryAsync(IClusterStore store)
    {
        var etcd = (EtcdStore)store;
        await etcd.CompactAsync((await etcd.GetStateAsync()).Revision);

        // A store that watched all along still holds the changes in its view and answers from it; a daemon that comes
        // (or comes back) after the compaction has only etcd's history, which is gone.
        return New();
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
