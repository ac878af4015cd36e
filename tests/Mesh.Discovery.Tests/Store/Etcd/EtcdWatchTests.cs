using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>
/// A daemon's waiters (both sync loops, the DNS follower, the probers, the API's long polls) share the store's one
/// watch stream instead of opening one per wait. Each test runs its own etcd, so its watcher count is the store's.
/// </summary>
[RequiresEtcd]
public sealed class EtcdWatchTests
{
    private static EtcdStoreOptions Options(Uri endpoint) => new() { Endpoints = [endpoint], Prefix = "/mesh/" };

    [StoreFact]
    public async Task Twenty_waiters_share_the_views_one_watch_stream_and_all_wake_with_the_change()
    {
        using var etcd = await EtcdProcess.StartNewAsync();
        await using var store = new EtcdStore(Options(etcd.ClientUrl));
        await using var writer = new EtcdStore(Options(etcd.ClientUrl));
        await store.CreateServiceAsync(new ServiceSpec { Name = "web" });
        var revision = (await store.GetStateAsync()).Revision;
        await WaitForWatchersAsync(etcd, 1);

        var waiters = Enumerable.Range(0, 20).Select(_ => store.WatchAsync(revision, TimeSpan.FromSeconds(30))).ToList();
        await Task.Delay(500);
        Assert.All(waiters, w => Assert.False(w.IsCompleted));
        Assert.Equal(1, await WatchersAsync(etcd)); // before: one stream per waiter, 21

        await writer.CreateServiceAsync(new ServiceSpec { Name = "api" });
        var woke = await Task.WhenAll(waiters).WaitAsync(TimeSpan.FromSeconds(10));
        var now = (await store.GetStateAsync()).Revision;
        Assert.All(woke, w =>
        {
            Assert.False(w.Resync);
            Assert.Equal(now, w.Revision);
            Assert.Equal([(StoreObjectKind.Service, "api", false)], w.Changes.Select(c => (c.Kind, c.Name, c.Deleted)));
        });
    }

    [StoreFact]
    public async Task A_store_that_kept_watching_answers_from_its_view_after_etcd_compacted_the_history()
    {
        using var etcd = await EtcdProcess.StartNewAsync();
        await using var store = new EtcdStore(Options(etcd.ClientUrl));
        var start = (await store.GetStateAsync()).Revision;
        await WaitForWatchersAsync(etcd, 1);
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "b" });
        await store.CompactAsync((await store.GetStateAsync()).Revision);

        var result = await store.WatchAsync(start, TimeSpan.FromSeconds(5));
        Assert.False(result.Resync);
        Assert.Equal(["a", "b"], result.Changes.Select(c => c.Name));

        // Another daemon, started after the compaction, has only etcd's history: it must re-read everything.
        await using var late = new EtcdStore(Options(etcd.ClientUrl));
        Assert.True((await late.WatchAsync(start, TimeSpan.FromSeconds(5))).Resync);
    }

    private static async Task WaitForWatchersAsync(EtcdProcess etcd, int count)
    {
        for (var i = 0; i < 100 && await WatchersAsync(etcd) != count; i++)
        {
            await Task.Delay(50);
        }

        Assert.Equal(count, await WatchersAsync(etcd));
    }

    /// <summary>etcd's own count of open watchers (its /metrics on the client URL).</summary>
    private static async Task<int> WatchersAsync(EtcdProcess etcd)
    {
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(new Uri(etcd.ClientUrl, "metrics"));
        var line = metrics.Split('\n').Single(l => l.StartsWith("etcd_debugging_mvcc_watcher_total ", StringComparison.Ordinal));
        return (int)double.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
    }
}
