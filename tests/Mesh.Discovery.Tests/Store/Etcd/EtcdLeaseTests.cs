using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>Node liveness: each daemon's store holds a lease; a node's tasks are running only while it is alive.</summary>
[RequiresEtcd]
public sealed class EtcdLeaseTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);

    /// <summary>The store of node <paramref name="node"/>'s daemon (null: a client that is no node, e.g. an observer).</summary>
    private EtcdStore Daemon(string prefix, string? node = null) =>
        new(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = prefix, LeaseTtl = Ttl, Node = node });

    [StoreFact]
    public async Task A_nodes_tasks_go_node_down_after_its_daemon_stops_and_run_again_when_it_registers_again()
    {
        var prefix = $"/mesh-lease-{Guid.NewGuid():N}/";
        var n1 = Daemon(prefix, "n1");
        await using var n2 = Daemon(prefix, "n2");
        await using var observer = Daemon(prefix);
        await n1.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await n2.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        await n1.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var t1 = await n1.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        var t2 = await n1.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        var t3 = await n2.AddTaskAsync(new TaskSpec { Service = "web", Node = "n2" });
        var alive = await observer.GetStateAsync();
        Assert.Equal(["web.1", "web.2", "web.3"], alive.Tasks.Select(t => t.Name));

        await n1.DisposeAsync(); // the daemon dies: no more keep-alives, and no revoke
        Assert.Equal(3, Running(await observer.GetStateAsync()).Count()); // not before the TTL
        var clock = Stopwatch.StartNew();
        var gone = await WaitForAsync(observer, s => Running(s).Count() == 1, TimeSpan.FromSeconds(15));
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(0.5), $"tasks went down after {clock.Elapsed}, before the lease could expire");
        Assert.Equal(["web.3"], Running(gone));
        Assert.Equal(["web.1 NodeDown", "web.2 NodeDown", "web.3 Running"], gone.Tasks.Select(t => $"{t.Name} {t.State}")); // still listed, with their addresses
        Assert.Equal(t1.Addresses, gone.Tasks[0].Addresses);
        Assert.Equal(["n1", "n2"], gone.Nodes.Select(n => n.Name)); // the node is still registered, just not alive
        Assert.Single(gone.Services);

        var changes = await observer.WatchAsync(alive.Revision, TimeSpan.FromSeconds(5));
        Assert.Contains(changes.Changes, c => c is { Kind: StoreObjectKind.Node, Name: "n1" });

        // The hidden tasks keep their addresses: nothing new may take them while their node is away.
        var t4 = await observer.AddTaskAsync(new TaskSpec { Service = "web", Node = "n2" });
        Assert.Equal("web.4", t4.Name);
        Assert.DoesNotContain(t4.Addresses["ingress"], new[] { t1, t2, t3 }.Select(t => t.Addresses["ingress"]));

        // n2 kept its lease alive all along (several TTLs by now).
        Assert.Contains("web.3", Running(await observer.GetStateAsync()));

        await using var restarted = Daemon(prefix, "n1");
        await restarted.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        var back = await observer.GetStateAsync();
        Assert.Equal(["web.1", "web.2", "web.3", "web.4"], Running(back));
        Assert.Equal(t1.Addresses, back.Tasks[0].Addresses);
    }

    [StoreFact]
    public async Task A_lease_lost_while_the_daemon_lives_is_replaced_and_the_node_announced_again()
    {
        var prefix = $"/mesh-lease-{Guid.NewGuid():N}/";
        await using var daemon = Daemon(prefix, "n1");
        await using var observer = Daemon(prefix);
        await daemon.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await daemon.CreateServiceAsync(new ServiceSpec { Name = "web" });
        await daemon.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        var lease = daemon.LeaseId;
        Assert.NotEqual(0, lease);

        // What etcd does when the daemon could not reach it for longer than the TTL: the lease is gone.
        using (var http = new HttpClient())
        {
            using var body = new StringContent(FormattableString.Invariant($"{{\"ID\":\"{lease}\"}}"));
            using var response = await http.PostAsync(new Uri(fixture.Etcd!.ClientUrl, "v3/lease/revoke"), body);
            response.EnsureSuccessStatusCode();
        }

        Assert.Empty(Running(await observer.GetStateAsync()));
        var back = await WaitForAsync(observer, s => Running(s).Count() == 1, TimeSpan.FromSeconds(10));
        Assert.Equal("n1", back.Tasks.Single().Node);
        Assert.NotEqual(lease, daemon.LeaseId);
    }

    [StoreFact]
    public async Task A_node_registered_through_another_daemons_api_is_alive_only_on_its_own_lease()
    {
        var prefix = $"/mesh-lease-{Guid.NewGuid():N}/";
        await using var a = Daemon(prefix, "n1");
        await using var observer = Daemon(prefix);
        await a.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        // What POST /v1/nodes for B on A's API does: A's store registers B.
        await a.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        await a.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await a.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        await a.AddTaskAsync(new TaskSpec { Service = "web", Node = "n2" });

        var leases = await AliveLeasesAsync(prefix);
        Assert.Equal(a.LeaseId, leases["n1"]);
        Assert.False(leases.ContainsKey("n2"), "A vouched for B's liveness with its own lease");
        Assert.Equal(["web.1"], Running(await observer.GetStateAsync())); // nobody runs n2 yet

        var b = Daemon(prefix, "n2");
        await b.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        leases = await AliveLeasesAsync(prefix);
        Assert.Equal(b.LeaseId, leases["n2"]);
        Assert.NotEqual(a.LeaseId, b.LeaseId);
        Assert.Equal(["web.1", "web.2"], Running(await observer.GetStateAsync()));

        // A registering B again (its address changed) still does not touch B's liveness.
        await a.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.22" });
        Assert.Equal(b.LeaseId, (await AliveLeasesAsync(prefix))["n2"]);

        // B's daemon dies: B goes node-down after the TTL, although A (alive all along) registered it.
        await b.DisposeAsync();
        var down = await WaitForAsync(observer, s => Running(s).SequenceEqual(["web.1"]), TimeSpan.FromSeconds(15));
        Assert.Equal(["web.1 Running", "web.2 NodeDown"], down.Tasks.Select(t => $"{t.Name} {t.State}"));
        Assert.Equal(a.LeaseId, (await AliveLeasesAsync(prefix))["n1"]);
    }

    /// <summary>node → the lease its alive key is attached to, read straight from etcd.</summary>
    private async Task<Dictionary<string, long>> AliveLeasesAsync(string prefix)
    {
        var key = prefix + "alive/";
        var end = key[..^1] + (char)(key[^1] + 1);
        using var http = new HttpClient();
        using var response = await http.PostAsJsonAsync(new Uri(fixture.Etcd!.ClientUrl, "v3/kv/range"), new
        {
            key = Convert.ToBase64String(Encoding.UTF8.GetBytes(key)),
            range_end = Convert.ToBase64String(Encoding.UTF8.GetBytes(end)),
        });
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var leases = new Dictionary<string, long>();
        if (doc.RootElement.TryGetProperty("kvs", out var kvs))
        {
            foreach (var kv in kvs.EnumerateArray())
            {
                var name = Encoding.UTF8.GetString(Convert.FromBase64String(kv.GetProperty("key").GetString()!))[key.Length..];
                leases[name] = kv.TryGetProperty("lease", out var lease) ? long.Parse(lease.GetString()!, CultureInfo.InvariantCulture) : 0;
            }
        }

        return leases;
    }

    private static async Task<ClusterState> WaitForAsync(IClusterStore store, Func<ClusterState, bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var state = await store.GetStateAsync();
            if (condition(state))
            {
                return state;
            }

            Assert.True(clock.Elapsed < timeout, $"condition not met within {timeout}; tasks: {string.Join(",", state.Tasks.Select(t => $"{t.Name} {t.State}"))}");
            await Task.Delay(100);
        }
    }

    private static IEnumerable<string> Running(ClusterState state) => state.Tasks.Where(t => t.State == TaskState.Running).Select(t => t.Name);
}
