using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>etcd going away, members failing, streams dropping. Each test runs its own etcd (it stops it).</summary>
[RequiresEtcd]
public sealed class EtcdOutageTests
{
    private static EtcdStoreOptions Options(params Uri[] endpoints) => new()
    {
        Endpoints = endpoints,
        Prefix = "/mesh/",
        ConnectTimeout = TimeSpan.FromSeconds(1),
        RequestTimeout = TimeSpan.FromSeconds(2),
        TransportRetries = 2,
        TransportRetryDelay = TimeSpan.FromMilliseconds(50),
    };

    [StoreFact]
    public async Task With_etcd_down_every_call_fails_fast_as_unavailable_and_works_again_after_a_restart()
    {
        using var etcd = await EtcdProcess.StartNewAsync();
        await using var store = new EtcdStore(Options(etcd.ClientUrl));
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var revision = (await store.GetStateAsync()).Revision;

        etcd.Stop();
        var clock = Stopwatch.StartNew();
        var read = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetStateAsync());
        Assert.Contains($"127.0.0.1:{etcd.ClientPort}", read.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<StoreUnavailableException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "api" }));
        await Assert.ThrowsAsync<StoreUnavailableException>(() => store.RemoveServiceAsync("web"));
        await Assert.ThrowsAsync<StoreUnavailableException>(() => store.WatchAsync(revision, TimeSpan.FromSeconds(30)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"four calls against a dead store took {clock.Elapsed}");

        await etcd.StartAsync();
        var state = await store.GetStateAsync();
        Assert.Equal(["web"], state.Services.Select(s => s.Name)); // nothing half-written by the refused calls
        await store.CreateServiceAsync(new ServiceSpec { Name = "api" });
        var changes = await store.WatchAsync(revision, TimeSpan.FromSeconds(5));
        Assert.Equal(["api"], changes.Changes.Select(c => c.Name));
    }

    [StoreFact]
    public async Task Calls_fail_over_from_a_dead_member_to_one_that_answers()
    {
        using var etcd = await EtcdProcess.StartNewAsync();
        var dead = new Uri($"http://127.0.0.1:{EtcdProcess.FreePort()}/");
        await using var store = new EtcdStore(Options(dead, etcd.ClientUrl));
        var before = (await store.GetStateAsync()).Revision;
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        var watched = await store.WatchAsync(before, TimeSpan.FromSeconds(5));
        Assert.Contains(watched.Changes, c => c is { Kind: StoreObjectKind.Node, Name: "n1" });

        await using var allDead = new EtcdStore(Options(dead, new Uri($"http://127.0.0.1:{EtcdProcess.FreePort()}/")));
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => allDead.GetStateAsync());
        Assert.Contains(dead.Authority, e.Message, StringComparison.Ordinal);
    }

    [StoreFact]
    public async Task A_watch_whose_stream_drops_resumes_from_its_revision_and_misses_nothing()
    {
        using var etcd = await EtcdProcess.StartNewAsync();
        using var proxy = new CuttableProxy(etcd.ClientPort);
        await using var watcher = new EtcdStore(Options(proxy.Url));
        await using var writer = new EtcdStore(Options(etcd.ClientUrl));
        var revision = (await watcher.GetStateAsync()).Revision;

        var pending = watcher.WatchAsync(revision, TimeSpan.FromSeconds(30));
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        var connections = proxy.Connections;

        proxy.Hold();
        proxy.CutAll(); // the stream drops; the watch reconnects and waits in the proxy
        await writer.CreateServiceAsync(new ServiceSpec { Name = "made-while-cut" });
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        proxy.Release();

        var result = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(result.Resync);
        Assert.Equal([(StoreObjectKind.Service, "made-while-cut", false)], result.Changes.Select(c => (c.Kind, c.Name, c.Deleted)));
        Assert.True(proxy.Connections > connections, "the watch never reconnected");
    }

    [StoreFact]
    public async Task A_three_member_cluster_keeps_serving_reads_writes_and_watches_when_the_member_in_use_dies()
    {
        var members = await EtcdProcess.StartClusterAsync(3);
        try
        {
            await using var store = new EtcdStore(Options([.. members.Select(m => m.ClientUrl)]) with { RequestTimeout = TimeSpan.FromSeconds(3) });
            await store.CreateServiceAsync(new ServiceSpec { Name = "before" });
            var revision = (await store.GetStateAsync()).Revision;
            var pending = store.WatchAsync(revision, TimeSpan.FromSeconds(30));
            await Task.Delay(300);

            members[0].Stop(); // the first listed member: the one every call and the watch went to
            await store.CreateServiceAsync(new ServiceSpec { Name = "after" }); // may wait for a new leader
            Assert.Equal(["before", "after"], (await store.GetStateAsync()).Services.Select(s => s.Name));
            var result = await pending.WaitAsync(TimeSpan.FromSeconds(15));
            Assert.Equal(["after"], result.Changes.Select(c => c.Name));
        }
        finally
        {
            foreach (var m in members)
            {
                m.Dispose();
            }
        }
    }
}
