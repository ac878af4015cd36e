using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Store.Contract;

/// <summary>
/// What every <see cref="IClusterStore"/> must do, whatever holds the state. One concrete subclass per
/// implementation (the embedded store, etcd); each test gets a fresh, empty store.
/// Revisions are only required to grow: etcd's are global and a mutation may take more than one.
/// </summary>
public abstract class StoreContractTests
{
    /// <summary>A fresh, empty store of the implementation under test.</summary>
    protected abstract Task<IClusterStore> OpenAsync();

    /// <summary>Another client of the same state (a second daemon), or the same instance where there is only one holder.</summary>
    protected abstract IClusterStore SecondWriter(IClusterStore store);

    /// <summary>Make the store forget its change history (embedded: restart it; etcd: compact); returns the store to use from now on.</summary>
    protected abstract Task<IClusterStore> LoseHistoryAsync(IClusterStore store);

    private static readonly NodeSpec Node1 = new() { Name = "n1", AdvertiseAddress = "198.18.0.11" };

    [StoreFact]
    public async Task Create_read_and_remove_every_kind_of_object_with_allocations()
    {
        var store = await OpenAsync();
        var empty = await store.GetStateAsync();
        Assert.Equal([OverlayNetwork.Ingress], empty.Networks);
        Assert.Empty(empty.Services);

        var node = await store.RegisterNodeAsync(Node1);
        Assert.Equal("10.255.0.2", node.IngressSandboxIp);
        var net = await store.CreateNetworkAsync(new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 });
        var web = await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Networks = ["appnet"], Aliases = ["frontend"] });
        Assert.Equal(StateTransitions.FirstFirewallMark, web.FirewallMark);
        Assert.Equal(["frontend"], web.Aliases);
        Assert.Equal("10.255.0.3", web.Vips["ingress"]);
        Assert.Equal("10.0.1.2", web.Vips["appnet"]);
        var task = await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", NetnsPath = "/var/run/netns/t1", Aliases = ["cache"] });
        Assert.Equal("web.1", task.Name);
        Assert.Equal(["cache"], task.Aliases);
        Assert.Equal("10.255.0.4", task.Addresses["ingress"]);
        Assert.Equal("10.0.1.3", task.Addresses["appnet"]);
        var second = await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", Addresses = new Dictionary<string, string> { ["appnet"] = "10.0.1.77" } });
        Assert.Equal("web.2", second.Name);
        Assert.Equal("10.0.1.77", second.Addresses["appnet"]);

        var state = await store.GetStateAsync();
        Assert.Equal([OverlayNetwork.Ingress, net], state.Networks);
        Assert.Equal([node], state.Nodes);
        Assert.Equal(Json(web), Json(Assert.Single(state.Services)));
        Assert.Equal([Json(task), Json(second)], state.Tasks.Select(Json));

        await store.RemoveTaskAsync("web.1");
        Assert.Equal(["web.2"], (await store.GetStateAsync()).Tasks.Select(t => t.Name));
        await store.RemoveServiceAsync("web");
        state = await store.GetStateAsync();
        Assert.Empty(state.Services);
        Assert.Empty(state.Tasks); // a service takes its tasks along
        Assert.Equal([node], state.Nodes);
        await Assert.ThrowsAsync<NotFoundException>(() => store.RemoveServiceAsync("web"));
        await Assert.ThrowsAsync<NotFoundException>(() => store.RemoveTaskAsync("web.2"));
    }

    [StoreFact]
    public async Task A_services_lb_and_affinity_are_stored_updated_and_read_back_and_a_refused_update_changes_nothing()
    {
        var store = await OpenAsync();
        var created = await store.CreateServiceAsync(new ServiceSpec { Name = "shop", Routes = [ServiceRoute.Parse("shop.test/=80")], LoadBalancing = LoadBalancing.LeastRequests, Affinity = Affinity.Cookie });
        Assert.Equal((LoadBalancing.LeastRequests, Affinity.Cookie), (created.LoadBalancing, created.Affinity));
        var updated = await store.UpdateServiceAsync("shop", new ServiceUpdate { LoadBalancing = LoadBalancing.Maglev });
        Assert.Equal((LoadBalancing.Maglev, Affinity.Cookie), (updated.LoadBalancing, updated.Affinity));
        var state = await SecondWriter(store).GetStateAsync();
        Assert.Equal(Json(updated), Json(Assert.Single(state.Services)));

        await Assert.ThrowsAsync<ValidationException>(() => store.UpdateServiceAsync("shop", new ServiceUpdate { Affinity = Affinity.SourceIp, LoadBalancing = LoadBalancing.PowerOfTwo }));
        await Assert.ThrowsAsync<NotFoundException>(() => store.UpdateServiceAsync("nope", new ServiceUpdate { Affinity = Affinity.None }));
        Assert.Equal(state.Revision, (await store.GetStateAsync()).Revision);
    }

    [StoreFact]
    public async Task Every_successful_change_moves_the_revision_forward()
    {
        var store = await OpenAsync();
        var revisions = new List<long> { (await store.GetStateAsync()).Revision };
        await store.RegisterNodeAsync(Node1);
        revisions.Add((await store.GetStateAsync()).Revision);
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        revisions.Add((await store.GetStateAsync()).Revision);
        await store.AddTaskAsync(new TaskSpec { Service = "a", Node = "n1" });
        revisions.Add((await store.GetStateAsync()).Revision);
        await store.RemoveServiceAsync("a");
        revisions.Add((await store.GetStateAsync()).Revision);
        Assert.Equal(revisions.Order(), revisions);
        Assert.Equal(revisions.Count, revisions.Distinct().Count());
    }

    [StoreFact]
    public async Task Re_registering_a_node_keeps_its_sandbox_ip_and_updates_its_address()
    {
        var store = await OpenAsync();
        var first = await store.RegisterNodeAsync(Node1);
        await store.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        var again = await SecondWriter(store).RegisterNodeAsync(Node1 with { AdvertiseAddress = "198.18.0.21" });
        Assert.Equal(first.IngressSandboxIp, again.IngressSandboxIp);
        var nodes = (await store.GetStateAsync()).Nodes;
        Assert.Equal(["n1", "n2"], nodes.Select(n => n.Name));
        Assert.Equal("198.18.0.21", nodes[0].AdvertiseAddress);
        Assert.Equal(2, nodes.Select(n => n.IngressSandboxIp).Distinct().Count());
    }

    [StoreFact]
    public async Task Removing_a_node_frees_its_address_and_is_refused_while_tasks_run_on_it()
    {
        var store = await OpenAsync();
        await store.RegisterNodeAsync(Node1);
        var n2 = await store.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var task = await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n2" });
        var before = await store.GetStateAsync();

        var busy = await Assert.ThrowsAsync<ConflictException>(() => SecondWriter(store).RemoveNodeAsync("n2"));
        Assert.Equal("node 'n2' still has 1 task(s) (web.1): remove them first (mesh task rm)", busy.Message);
        await Assert.ThrowsAsync<NotFoundException>(() => store.RemoveNodeAsync("ghost"));
        var unchanged = await store.GetStateAsync();
        Assert.Equal(before.Revision, unchanged.Revision);
        Assert.Equal(Json(before), Json(unchanged));

        await store.RemoveTaskAsync(task.Name);
        await SecondWriter(store).RemoveNodeAsync("n2");
        var after = await store.GetStateAsync();
        Assert.Equal(["n1"], after.Nodes.Select(n => n.Name));
        Assert.True(after.Revision > before.Revision);

        // Its sandbox address (the lowest free one now) and its advertise address are free again.
        var n3 = await store.RegisterNodeAsync(new NodeSpec { Name = "n3", AdvertiseAddress = "198.18.0.12" });
        Assert.Equal(n2.IngressSandboxIp, n3.IngressSandboxIp);
    }

    [StoreFact]
    public async Task Rejected_requests_change_nothing_not_even_the_revision()
    {
        var store = await OpenAsync();
        await store.RegisterNodeAsync(Node1);
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var before = await store.GetStateAsync();

        await Assert.ThrowsAsync<ConflictException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "web" }));
        await Assert.ThrowsAsync<ConflictException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "other", Ports = [new PublishedPort(8080, 81)] }));
        await Assert.ThrowsAsync<ValidationException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "x y" }));
        await Assert.ThrowsAsync<ValidationException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "z", Networks = ["nope"] }));
        await Assert.ThrowsAsync<ValidationException>(() => store.CreateNetworkAsync(new NetworkSpec { Name = "n", Subnet = "10.0.0.1/24", Vni = 5 }));
        await Assert.ThrowsAsync<ConflictException>(() => store.CreateNetworkAsync(new NetworkSpec { Name = "n", Subnet = "10.255.3.0/24", Vni = 5 }));
        await Assert.ThrowsAsync<NotFoundException>(() => store.AddTaskAsync(new TaskSpec { Service = "web", Node = "ghost" }));
        await Assert.ThrowsAsync<NotFoundException>(() => store.AddTaskAsync(new TaskSpec { Service = "nope", Node = "n1" }));
        await Assert.ThrowsAsync<NotFoundException>(() => store.RemoveTaskAsync("nope"));
        await Assert.ThrowsAsync<ValidationException>(() => store.RegisterNodeAsync(new NodeSpec { Name = "n9", AdvertiseAddress = "not-an-ip" }));

        var after = await store.GetStateAsync();
        Assert.Equal(before.Revision, after.Revision);
        Assert.Equal(Json(before), Json(after));
    }

    [StoreFact]
    public async Task Watch_returns_the_changes_after_a_revision_in_order()
    {
        var store = await OpenAsync();
        var start = (await store.GetStateAsync()).Revision;
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        var afterA = (await store.GetStateAsync()).Revision;
        await store.CreateServiceAsync(new ServiceSpec { Name = "b" });
        await store.RemoveServiceAsync("a");
        var end = (await store.GetStateAsync()).Revision;

        var all = await CollectAsync(store, start, end);
        Assert.Equal([(StoreObjectKind.Service, "a", false), (StoreObjectKind.Service, "b", false), (StoreObjectKind.Service, "a", true)], all.Select(Short));
        Assert.Equal(all.Select(c => c.Revision).Order(), all.Select(c => c.Revision));
        Assert.All(all, c => Assert.InRange(c.Revision, start + 1, end));

        var sinceA = await CollectAsync(store, afterA, end);
        Assert.Equal([(StoreObjectKind.Service, "b", false), (StoreObjectKind.Service, "a", true)], sinceA.Select(Short));
    }

    [StoreFact]
    public async Task Watch_resumes_from_any_revision_without_gaps_or_repeats()
    {
        var store = await OpenAsync();
        var revisions = new List<long> { (await store.GetStateAsync()).Revision };
        for (var i = 0; i < 6; i++)
        {
            await store.CreateServiceAsync(new ServiceSpec { Name = $"s{i}" });
            revisions.Add((await store.GetStateAsync()).Revision);
        }

        for (var from = 0; from < revisions.Count; from++)
        {
            // Follow the watch one answer at a time, as a daemon does, from each intermediate revision.
            var seen = new List<string>();
            var at = revisions[from];
            while (at < revisions[^1])
            {
                var result = await store.WatchAsync(at, TimeSpan.FromSeconds(5));
                Assert.False(result.Resync);
                Assert.True(result.Revision > at, $"watch from {at} did not advance");
                seen.AddRange(result.Changes.Select(c => c.Name));
                at = result.Revision;
            }

            Assert.Equal(Enumerable.Range(from, 6 - from).Select(i => $"s{i}"), seen);
        }
    }

    [StoreFact]
    public async Task A_waiting_watch_wakes_on_a_change_and_an_idle_one_times_out_empty()
    {
        var store = await OpenAsync();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        var now = (await store.GetStateAsync()).Revision;

        var idle = await store.WatchAsync(now, TimeSpan.FromMilliseconds(300));
        Assert.False(idle.Resync);
        Assert.Empty(idle.Changes);
        Assert.Equal(now, idle.Revision);

        var pending = store.WatchAsync(now, TimeSpan.FromSeconds(20));
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        await SecondWriter(store).RemoveServiceAsync("a");
        var woke = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(woke.Resync);
        Assert.Equal([(StoreObjectKind.Service, "a", true)], woke.Changes.Select(Short));
        Assert.Equal((await store.GetStateAsync()).Revision, woke.Revision);
    }

    [StoreFact]
    public async Task Watching_from_history_the_store_no_longer_holds_asks_for_a_resync()
    {
        var store = await OpenAsync();
        var start = (await store.GetStateAsync()).Revision;
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "b" });
        store = await LoseHistoryAsync(store);

        var result = await store.WatchAsync(start, TimeSpan.FromSeconds(5));
        Assert.True(result.Resync);
        var state = await store.GetStateAsync();
        Assert.Equal(["a", "b"], state.Services.Select(s => s.Name)); // the resync reads the whole state: nothing lost

        var future = await store.WatchAsync(state.Revision + 1_000_000, TimeSpan.FromSeconds(5));
        Assert.True(future.Resync); // a revision from another store's life: start over
    }

    [StoreFact]
    public async Task Writers_racing_for_the_same_port_or_name_get_exactly_one_winner()
    {
        var store = await OpenAsync();
        var other = SecondWriter(store);
        var writers = new[] { store, other };

        var samePort = await Attempt(Enumerable.Range(0, 12).Select(i =>
            writers[i % 2].CreateServiceAsync(new ServiceSpec { Name = $"p{i}", Ports = [new PublishedPort(9000, 80)] })));
        Assert.Single(samePort.Won);
        Assert.Equal(11, samePort.Lost.Count);
        Assert.All(samePort.Lost, e => Assert.Contains("9000", e.Message, StringComparison.Ordinal));

        var sameName = await Attempt(Enumerable.Range(0, 12).Select(i =>
            writers[i % 2].CreateServiceAsync(new ServiceSpec { Name = "dup", Ports = [new PublishedPort(9100 + i, 80)] })));
        Assert.Single(sameName.Won);
        Assert.All(sameName.Lost, e => Assert.Contains("already exists", e.Message, StringComparison.Ordinal));

        var distinct = await Attempt(Enumerable.Range(0, 30).Select(i =>
            writers[i % 2].CreateServiceAsync(new ServiceSpec { Name = $"d{i}", Ports = [new PublishedPort(10_000 + i, 80)] })));
        Assert.Empty(distinct.Lost);
        var services = (await store.GetStateAsync()).Services;
        Assert.Equal(32, services.Count);
        Assert.Equal(32, services.Select(s => s.FirewallMark).Distinct().Count());
        Assert.Equal(32, services.Select(s => s.Vips["ingress"]).Distinct().Count());
    }

    [StoreFact]
    public async Task A_starting_task_becomes_running_or_failed_once_and_a_service_with_no_tcp_target_starts_running()
    {
        var store = await OpenAsync();
        await store.RegisterNodeAsync(Node1);
        await store.CreateNetworkAsync(new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await store.CreateServiceAsync(new ServiceSpec { Name = "dns", Ports = [new PublishedPort(5353, 53, TransportProtocol.Udp)] });
        await store.CreateServiceAsync(new ServiceSpec { Name = "db", Networks = ["appnet"] });
        Assert.Equal(TaskState.Starting, (await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", State = TaskState.Starting })).State);
        Assert.Equal(TaskState.Running, (await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" })).State);
        // Nothing to connect to (no published port, no route; UDP only): running at once.
        Assert.Equal(TaskState.Running, (await store.AddTaskAsync(new TaskSpec { Service = "db", Node = "n1", State = TaskState.Starting })).State);
        Assert.Equal(TaskState.Running, (await store.AddTaskAsync(new TaskSpec { Service = "dns", Node = "n1", State = TaskState.Starting })).State);

        var before = await store.GetStateAsync();
        Assert.Equal(TaskState.Starting, before.Tasks.Single(t => t.Name == "web.1").State);
        var bad = await Assert.ThrowsAsync<ValidationException>(() => store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", State = TaskState.Failed }));
        Assert.Equal("state", bad.Field);
        await Assert.ThrowsAsync<ValidationException>(() => store.UpdateTaskAsync("web.1", new TaskUpdate { State = TaskState.Draining }));
        await Assert.ThrowsAsync<ValidationException>(() => store.UpdateTaskAsync("web.1", new TaskUpdate()));
        await Assert.ThrowsAsync<NotFoundException>(() => store.UpdateTaskAsync("web.9", new TaskUpdate { State = TaskState.Running }));
        var notStarting = await Assert.ThrowsAsync<ConflictException>(() => store.UpdateTaskAsync("web.2", new TaskUpdate { State = TaskState.Failed }));
        Assert.Contains("is running, not starting", notStarting.Message, StringComparison.Ordinal);
        Assert.Equal(Json(before), Json(await store.GetStateAsync()));

        var running = await SecondWriter(store).UpdateTaskAsync("web.1", new TaskUpdate { State = TaskState.Running });
        Assert.Equal(TaskState.Running, running.State);
        var after = await store.GetStateAsync();
        Assert.True(after.Revision > before.Revision);
        Assert.Equal(Json(running), Json(after.Tasks.Single(t => t.Name == "web.1")));
        // Told again (a daemon whose answer was lost): no change, no new revision. It cannot go back or fail now.
        await store.UpdateTaskAsync("web.1", new TaskUpdate { State = TaskState.Running });
        Assert.Equal(after.Revision, (await store.GetStateAsync()).Revision);
        await Assert.ThrowsAsync<ConflictException>(() => store.UpdateTaskAsync("web.1", new TaskUpdate { State = TaskState.Failed }));

        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", State = TaskState.Starting });
        Assert.Equal(TaskState.Failed, (await store.UpdateTaskAsync("web.3", new TaskUpdate { State = TaskState.Failed })).State);
        await Assert.ThrowsAsync<ConflictException>(() => store.UpdateTaskAsync("web.3", new TaskUpdate { State = TaskState.Running }));
        Assert.Equal(TaskState.Failed, (await SecondWriter(store).GetStateAsync()).Tasks.Single(t => t.Name == "web.3").State);
    }

    [StoreFact]
    public async Task Removing_a_service_removes_all_of_its_many_tasks_at_once()
    {
        var store = await OpenAsync();
        await store.RegisterNodeAsync(Node1);
        await store.CreateServiceAsync(new ServiceSpec { Name = "big", Ports = [new PublishedPort(8080, 80)] });
        await store.CreateServiceAsync(new ServiceSpec { Name = "small", Ports = [new PublishedPort(8081, 80)] });
        await store.AddTaskAsync(new TaskSpec { Service = "small", Node = "n1" });
        for (var i = 0; i < 140; i++) // more than etcd's default limit of 128 operations per transaction
        {
            await store.AddTaskAsync(new TaskSpec { Service = "big", Node = "n1" });
        }

        var before = (await store.GetStateAsync()).Revision;
        await store.RemoveServiceAsync("big");
        var state = await store.GetStateAsync();
        Assert.Equal(["small.1"], state.Tasks.Select(t => t.Name));
        var changes = await CollectAsync(store, before, state.Revision);
        Assert.Contains((StoreObjectKind.Service, "big", true), changes.Select(Short));
        Assert.Single(changes.Select(c => c.Revision).Distinct()); // one atomic change
    }

    protected static async Task<List<StoreChange>> CollectAsync(IClusterStore store, long from, long until)
    {
        var changes = new List<StoreChange>();
        var at = from;
        while (at < until)
        {
            var result = await store.WatchAsync(at, TimeSpan.FromSeconds(5));
            Assert.False(result.Resync, $"unexpected resync watching from {at}");
            Assert.True(result.Revision > at, $"watch from {at} did not advance (until {until})");
            changes.AddRange(result.Changes);
            at = result.Revision;
        }

        return changes;
    }

    protected static (StoreObjectKind, string, bool) Short(StoreChange c) => (c.Kind, c.Name, c.Deleted);

    protected static string Json<T>(T value) => JsonSerializer.Serialize(value, MeshJson.Options);

    protected static async Task<(List<T> Won, List<ConflictException> Lost)> Attempt<T>(IEnumerable<Task<T>> calls)
    {
        var won = new List<T>();
        var lost = new List<ConflictException>();
        foreach (var call in calls.ToArray())
        {
            try
            {
                won.Add(await call);
            }
            catch (ConflictException e)
            {
                lost.Add(e);
            }
        }

        return (won, lost);
    }
}
