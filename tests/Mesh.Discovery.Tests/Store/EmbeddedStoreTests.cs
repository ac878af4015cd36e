using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Tests.Store;

public sealed class EmbeddedStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-store-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private EmbeddedStore Open() => new(_dir, NullLogger<EmbeddedStore>.Instance);

    [Fact]
    public async Task State_survives_a_restart_with_the_same_revision_and_allocations()
    {
        var store = Open();
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", NetnsPath = "/var/run/netns/t" });
        var before = await store.GetStateAsync();

        var after = await Open().GetStateAsync();
        Assert.Equal(3, after.Revision);
        Assert.Equal(before.Revision, after.Revision);
        Assert.Equal(before.Services.Single().Vips["ingress"], after.Services.Single().Vips["ingress"]);
        Assert.Equal(before.Tasks.Single().Addresses["ingress"], after.Tasks.Single().Addresses["ingress"]);
        Assert.Equal(before.Services.Single().Ports, after.Services.Single().Ports);
    }

    [Fact]
    public async Task A_rejected_request_changes_nothing_not_even_the_revision_or_the_file()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var file = await File.ReadAllTextAsync(Path.Combine(_dir, "cluster-state.json"));
        var before = await store.GetStateAsync();

        await Assert.ThrowsAsync<ConflictException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "web" }));
        await Assert.ThrowsAsync<ValidationException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "x y" }));
        await Assert.ThrowsAsync<NotFoundException>(() => store.RemoveTaskAsync("nope"));

        Assert.Same(before, await store.GetStateAsync());
        Assert.Equal(file, await File.ReadAllTextAsync(Path.Combine(_dir, "cluster-state.json")));
    }

    [Fact]
    public async Task A_daemon_re_registering_unchanged_does_not_move_the_revision()
    {
        var store = Open();
        var first = await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        var again = await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        Assert.Equal(first, again);
        Assert.Equal(1, (await store.GetStateAsync()).Revision);
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.21" });
        Assert.Equal(2, (await store.GetStateAsync()).Revision);
    }

    [Fact]
    public async Task Watch_returns_changes_in_order_after_a_revision_and_wakes_on_a_change()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "b" });

        var since1 = await store.WatchAsync(1, TimeSpan.FromSeconds(1));
        Assert.False(since1.Resync);
        Assert.Equal([new StoreChange(2, StoreObjectKind.Service, "b", false)], since1.Changes);

        var pending = store.WatchAsync(2, TimeSpan.FromSeconds(10));
        Assert.False(pending.IsCompleted);
        await store.RemoveServiceAsync("a");
        var woke = await pending.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal([new StoreChange(3, StoreObjectKind.Service, "a", true)], woke.Changes);

        var idle = await store.WatchAsync(3, TimeSpan.FromMilliseconds(50));
        Assert.Empty(idle.Changes);
        Assert.Equal(3, idle.Revision);
    }

    [Fact]
    public async Task Watch_from_a_revision_the_store_cannot_replay_asks_for_a_resync()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        var restarted = Open(); // history is in memory only
        Assert.True((await restarted.WatchAsync(0, TimeSpan.FromSeconds(1))).Resync);
        Assert.True((await restarted.WatchAsync(99, TimeSpan.FromSeconds(1))).Resync);
    }

    [Fact]
    public async Task Concurrent_creates_never_hand_out_the_same_address_or_mark()
    {
        var store = Open();
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        var creates = Enumerable.Range(0, 100).Select(i => Task.Run(() => store.CreateServiceAsync(new ServiceSpec { Name = $"s{i}", Ports = [new PublishedPort(10_000 + i, 80)] })));
        var services = await Task.WhenAll(creates);
        Assert.Equal(100, services.Select(s => s.FirewallMark).Distinct().Count());
        Assert.Equal(100, services.Select(s => s.Vips["ingress"]).Distinct().Count());
        Assert.Equal(101, (await store.GetStateAsync()).Revision);
    }
}
