using System.Collections.Frozen;
using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.HealthChecks;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Tests.Planning;

/// <summary>
/// Planning by the services that changed (<see cref="IngressSandboxTable.Builder"/> + <see cref="NftTableMemory"/>)
/// against the whole-table path (<see cref="IngressSandboxTable.Build"/> + <see cref="NftPlanner"/>) on random
/// sequences of cluster changes: the same desired elements, the same element changes, the same chains' messages, and the
/// same remembered kernel state after every step.
/// </summary>
public class NftTableMemoryTests
{
    private const string Sandbox = "10.255.0.2";

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Planning_by_changed_services_equals_the_whole_table_plan(int seed)
    {
        var random = new Random(seed);
        var cluster = new RandomCluster(random);
        var builder = new IngressSandboxTable.Builder();
        var (state, health) = cluster.Next();
        var first = builder.Build(state, Sandbox, "n1", health);
        var memory = NftTableMemory.Of(first, first); // written cold: nothing to stabilize against
        var whole = NftPlanner.Expected(first);     // the whole-table path's remembered state, evolved apart
        var planned = 0;
        for (var step = 0; step < 40; step++)
        {
            (state, health) = random.Next(8) == 0 ? (state, health) : cluster.Next(); // sometimes the same state again
            var desired = builder.Build(state, Sandbox, "n1", health);
            AssertSameElements(IngressSandboxTable.Build(state, Sandbox, "n1", health), desired, seed, step);

            var stable = NftPlanner.Stabilize(desired, whole);
            var wholeBatch = NftPlanner.PlanStable(stable, whole);
            var expected = NftPlanner.Expected(stable);

            var change = memory.Plan(desired);
            Assert.True(change is not null, $"seed {seed} step {step}: not planned by service");
            Assert.True((change.Batch is null) == (wholeBatch is null), $"seed {seed} step {step}: one plan is empty, the other not");
            Assert.Equal(Structural(wholeBatch), Structural(change.Batch));
            foreach (var map in desired.Maps)
            {
                // The element changes, computed here from the two states (not by either planner's code).
                var have = whole.Maps[map.Name];
                var want = expected.Maps[map.Name];
                var delete = have.Values.Where(e => !want.TryGetValue(e.Key, out var w) || !Same(w, e)).Select(e => Convert.ToHexString(e.Key.Span)).Order().ToList();
                var add = want.Values.Where(e => !have.TryGetValue(e.Key, out var h) || !Same(h, e)).Select(Describe).Order().ToList();
                var mine = change.Maps.SingleOrDefault(m => m.Map == map.Name);
                Assert.Equal(delete, mine?.Delete.Select(e => Convert.ToHexString(e.Key.Span)).Order().ToList() ?? []);
                Assert.Equal(add, mine?.Add.Select(Describe).Order().ToList() ?? []);
            }

            memory.Apply(change);
            whole = expected;
            AssertSameState(whole, memory.State, seed, step);
            planned += change.Batch is null ? 0 : 1;
        }

        Assert.True(planned > 12, $"seed {seed}: only {planned} of 40 steps changed anything");
    }

    public static TheoryData<int> Seeds()
    {
        var seeds = new TheoryData<int>();
        for (var seed = 1; seed <= 10; seed++)
        {
            seeds.Add(seed);
        }

        return seeds;
    }

    /// <summary>
    /// Elements someone else deletes and adds (<see cref="NftTableMemory.TakeForeign"/>, as the change log reports them),
    /// then the next plan, for the same table or a changed one: the plan's element changes, applied to a copy of the
    /// kernel (a delete must find its key, an add must not meet another element there), leave the kernel exactly as the
    /// memory says; the same table again puts back exactly what Mesh wrote; and the maps numgen does not pick (no slots)
    /// end as a memory that never saw the drift plans them.
    /// </summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public void Elements_changed_by_others_are_put_back_by_the_next_plan_whatever_else_it_changes(int seed)
    {
        var random = new Random(seed);
        var cluster = new RandomCluster(random);
        var builder = new IngressSandboxTable.Builder();
        var (state, health) = cluster.Next();
        var desired = builder.Build(state, Sandbox, "n1", health);
        var memory = NftTableMemory.Of(desired, desired);
        var twin = NftTableMemory.Of(desired, desired); // never sees the drift
        var kernel = desired.Maps.ToDictionary(m => m.Name, m => m.Elements.ToDictionary(e => e.Element.Key, e => e.Element), StringComparer.Ordinal);
        var repaired = 0;
        for (var step = 0; step < 30; step++)
        {
            var before = Snapshot(kernel);
            var drifted = 0;
            for (var k = random.Next(1, 4); k > 0; k--)
            {
                var map = desired.Maps[random.Next(desired.Maps.Count)].Name;
                var held = kernel[map];
                if (held.Count == 0)
                {
                    continue;
                }

                var victim = held.Values.ElementAt(random.Next(held.Count));
                if (random.Next(2) == 0)
                {
                    held.Remove(victim.Key);
                    memory.TakeForeign(map, victim, deleted: true);
                }
                else
                {
                    var key = victim.Key.Span.ToArray();
                    key[^1] ^= 0x5a; // a key Mesh did not write, with the victim's value
                    var foreign = victim with { Key = new NftData(key) };
                    if (!held.TryAdd(foreign.Key, foreign))
                    {
                        continue;
                    }

                    memory.TakeForeign(map, foreign, deleted: false);
                }

                drifted++;
            }

            var same = random.Next(3) == 0;
            if (!same)
            {
                (state, health) = cluster.Next();
                desired = builder.Build(state, Sandbox, "n1", health);
            }

            var change = memory.Plan(desired);
            var unseen = twin.Plan(desired);
            Assert.True(change is not null && unseen is not null, $"seed {seed} step {step}: not planned by service");
            foreach (var map in change.Maps)
            {
                var held = kernel[map.Map];
                foreach (var element in map.Delete)
                {
                    Assert.True(held.Remove(element.Key), $"seed {seed} step {step}: deletes {Describe(element)} that {map.Map} does not hold");
                }

                foreach (var element in map.Add)
                {
                    Assert.False(held.TryGetValue(element.Key, out var there) && !Same(there, element), $"seed {seed} step {step}: adds {Describe(element)} over another element");
                    held[element.Key] = element;
                }
            }

            memory.Apply(change);
            twin.Apply(unseen);
            AssertSameState(memory.State, NftTableState.Of(memory.State.Chains, kernel.ToDictionary(m => m.Key, m => (IReadOnlyDictionary<NftData, SetElement>)m.Value, StringComparer.Ordinal)), seed, step);
            if (same && drifted > 0 && ReferenceEquals(desired, builder.Build(state, Sandbox, "n1", health)))
            {
                Assert.Equal(before, Snapshot(kernel)); // the drift undone, nothing else
                repaired++;
            }

            foreach (var map in desired.Maps.Where(m => !m.Slotted))
            {
                Assert.True(
                    twin.State.Maps[map.Name].Values.Select(Describe).Order().SequenceEqual(memory.State.Maps[map.Name].Values.Select(Describe).Order()),
                    $"seed {seed} step {step}: map {map.Name} differs from the plan without drift");
            }

            Assert.All(desired.Maps, m => Assert.Equal(twin.State.Maps[m.Name].Count, memory.State.Maps[m.Name].Count));
        }

        Assert.True(repaired > 0, $"seed {seed}: the same table never came with drift");

        static List<string> Snapshot(Dictionary<string, Dictionary<NftData, SetElement>> maps) =>
            [.. maps.SelectMany(m => m.Value.Values.Select(e => m.Key + " " + Describe(e))).Order(StringComparer.Ordinal)];
    }

    [Fact]
    public void The_same_state_again_gives_the_same_table_and_nothing_to_plan()
    {
        var (state, health) = new RandomCluster(new Random(7)).Next();
        var builder = new IngressSandboxTable.Builder();
        var desired = builder.Build(state, Sandbox, "n1", health);
        var memory = NftTableMemory.Of(desired, desired);
        Assert.Same(desired, builder.Build(state, Sandbox, "n1", health));
        var change = memory.Plan(desired);
        Assert.NotNull(change);
        Assert.Null(change.Batch);
        Assert.Empty(change.Maps);

        // An equal state as a new object (a new revision that changed nothing here): the services' groups are reused.
        var again = builder.Build(state with { Revision = state.Revision + 1 }, Sandbox, "n1", health);
        Assert.NotSame(desired, again);
        Assert.All(again.Maps.Zip(desired.Maps), p => Assert.All(p.First.Groups!.Zip(p.Second.Groups!), g => Assert.Same(g.Second, g.First)));
        Assert.Null(memory.Plan(again)!.Batch);
    }

    [Fact]
    public void A_pass_after_a_change_looks_only_at_the_services_it_touched()
    {
        var services = Enumerable.Range(0, 300).Select(i => new ClusterService
        {
            Name = string.Create(CultureInfo.InvariantCulture, $"s{i:D3}"),
            FirewallMark = 0x100 + i,
            Ports = [new PublishedPort(20000 + i, 80)],
            HealthCheck = i % 100 == 0 ? new HealthCheck() : null,
        }).ToArray();
        var tasks = services.SelectMany((s, i) => Enumerable.Range(0, 4).Select(k => Task(s.Name, k, (i * 4) + k))).ToArray();
        var state = new ClusterState { Revision = 1, Services = services, Tasks = tasks };
        var healthy = new BackendHealth(FrozenSet<string>.Empty);
        var builder = new IngressSandboxTable.Builder();
        builder.Build(state, Sandbox, "n1", healthy);
        Assert.False(builder.LastPassByChanges);
        Assert.Equal(300, builder.LastPassServices);

        // One task replaced in its place, one added at the end of another service: two services looked at.
        var replaced = tasks.ToArray();
        replaced[41] = Task(services[10].Name, 9, 5000);
        state = state with { Revision = 2, Tasks = [.. replaced, Task(services[200].Name, 9, 5001)] };
        var desired = builder.Build(state, Sandbox, "n1", healthy);
        Assert.True(builder.LastPassByChanges);
        Assert.Equal(2, builder.LastPassServices);
        AssertSameElements(IngressSandboxTable.Build(state, Sandbox, "n1", healthy), desired, 0, 1);

        // A service record replaced and another removed with its tasks.
        state = state with
        {
            Revision = 3,
            Services = [.. services.Where(s => s.Name != "s250").Select(s => s.Name == "s020" ? s with { LoadBalancing = LoadBalancing.Maglev } : s)],
            Tasks = [.. state.Tasks.Where(t => t.Service != "s250")],
        };
        desired = builder.Build(state, Sandbox, "n1", healthy);
        Assert.True(builder.LastPassByChanges);
        Assert.Equal(1, builder.LastPassServices); // s020 computed; s250 only dropped
        AssertSameElements(IngressSandboxTable.Build(state, Sandbox, "n1", healthy), desired, 0, 2);

        // New health verdicts: the services with a health check (3 of them) are looked at again.
        var unhealthy = new BackendHealth(new[] { "s100.1" }.ToFrozenSet(StringComparer.Ordinal));
        desired = builder.Build(state, Sandbox, "n1", unhealthy);
        Assert.True(builder.LastPassByChanges);
        Assert.Equal(3, builder.LastPassServices);
        AssertSameElements(IngressSandboxTable.Build(state, Sandbox, "n1", unhealthy), desired, 0, 3);

        // Every object anew (a fetch decoded whole): nothing matches by reference, so the state is built whole.
        state = state with { Revision = 4, Services = [.. state.Services.Select(s => s with { })], Tasks = [.. state.Tasks.Select(t => t with { })] };
        desired = builder.Build(state, Sandbox, "n1", unhealthy);
        Assert.False(builder.LastPassByChanges);
        AssertSameElements(IngressSandboxTable.Build(state, Sandbox, "n1", unhealthy), desired, 0, 4);

        // Another node's view: built whole.
        builder.Build(state, Sandbox, "n2", unhealthy);
        Assert.False(builder.LastPassByChanges);

        static ServiceTask Task(string service, int slot, int index) => new()
        {
            Name = string.Create(CultureInfo.InvariantCulture, $"{service}.{slot}"),
            Service = service,
            Node = index % 2 == 0 ? "n1" : "n2",
            Addresses = new Dictionary<string, string> { [OverlayNetwork.IngressName] = string.Create(CultureInfo.InvariantCulture, $"10.1.{index / 250}.{(index % 250) + 2}") },
        };
    }

    [Fact]
    public void A_table_not_built_in_groups_or_with_another_skeleton_goes_the_whole_table_way()
    {
        var (state, health) = new RandomCluster(new Random(3)).Next();
        var desired = new IngressSandboxTable.Builder().Build(state, Sandbox, "n1", health);
        var memory = NftTableMemory.Of(desired, desired);
        Assert.Null(memory.Plan(IngressSandboxTable.Build(state, "10.255.0.3", "n1", health))); // the source-nat rule differs
        Assert.Null(memory.Plan(desired with { Maps = desired.Maps.Select(m => new NftMap(m.Declaration, m.Set, m.Elements) { Slotted = m.Slotted }).ToList() }));
    }

    private static bool Same(SetElement a, SetElement b) => a.Key == b.Key && a.Data == b.Data && a.Verdict == b.Verdict;

    private static string Describe(SetElement e) =>
        $"{Convert.ToHexString(e.Key.Span)}:{(e.Data is { } d ? Convert.ToHexString(d.Span) : "")}:{e.Verdict}";

    /// <summary>The batch's messages other than elements (chains, rules, the table), in order.</summary>
    private static List<string> Structural(NfTablesBatch? batch) =>
        batch?.Operations.Where(o => !o.Contains(" element ", StringComparison.Ordinal)).ToList() ?? [];

    private static void AssertSameElements(NftDesiredTable expected, NftDesiredTable actual, int seed, int step)
    {
        Assert.Equal(expected.Skeleton, actual.Skeleton);
        Assert.Equal(expected.Chains.Select(c => (c.Name, NftPlanner.ChainTag(c))), actual.Chains.Select(c => (c.Name, NftPlanner.ChainTag(c))));
        foreach (var (e, a) in expected.Maps.Zip(actual.Maps))
        {
            Assert.True(e.Elements.Select(x => x.Text).SequenceEqual(a.Elements.Select(x => x.Text)), $"seed {seed} step {step}: map {e.Name}'s elements differ");
            Assert.True(e.Elements.Select(x => Describe(x.Element)).SequenceEqual(a.Elements.Select(x => Describe(x.Element))), $"seed {seed} step {step}: map {e.Name}'s element bytes differ");
        }
    }

    private static void AssertSameState(NftTableState expected, NftTableState actual, int seed, int step)
    {
        Assert.Equal(expected.Chains.Keys.Order(StringComparer.Ordinal), actual.Chains.Keys.Order(StringComparer.Ordinal));
        Assert.All(expected.Chains, c => Assert.Equal(c.Value, actual.Chains[c.Key]));
        foreach (var (name, elements) in expected.Maps)
        {
            Assert.True(
                elements.Values.Select(Describe).Order().SequenceEqual(actual.Maps[name].Values.Select(Describe).Order()),
                $"seed {seed} step {step}: map {name} remembered differently");
        }
    }

    /// <summary>A cluster changed at random: services and tasks come and go, tasks move and turn unhealthy, modes change.</summary>
    private sealed class RandomCluster(Random random)
    {
        private readonly List<ClusterService> _services = [];
        private readonly List<ServiceTask> _tasks = [];
        private readonly HashSet<string> _unhealthy = new(StringComparer.Ordinal);
        private int _nextService;
        private int _nextTask;
        private long _revision;

        public (ClusterState, BackendHealth) Next()
        {
            if (_services.Count == 0)
            {
                for (var i = 0; i < 6; i++)
                {
                    AddService();
                }
            }
            else
            {
                for (var i = random.Next(1, 4); i > 0; i--)
                {
                    Mutate();
                }
            }

            switch (random.Next(12))
            {
                case 0 when _tasks.Count > 1:
                    // Two tasks swap places: the lists no longer match in step there (the builder realigns or builds whole).
                    var (x, y) = (random.Next(_tasks.Count), random.Next(_tasks.Count));
                    (_tasks[x], _tasks[y]) = (_tasks[y], _tasks[x]);
                    break;
                case 1:
                    // Every object decoded anew (a joined daemon's fetch, an etcd relist): nothing to match by reference.
                    for (var i = 0; i < _services.Count; i++)
                    {
                        _services[i] = _services[i] with { };
                    }

                    break;
                case 2:
                    for (var i = 0; i < _tasks.Count; i++)
                    {
                        _tasks[i] = _tasks[i] with { };
                    }

                    break;
            }

            var state = new ClusterState { Revision = ++_revision, Services = [.. _services], Tasks = [.. _tasks] };
            return (state, new BackendHealth(_unhealthy.ToFrozenSet(StringComparer.Ordinal)));
        }

        private void Mutate()
        {
            switch (random.Next(10))
            {
                case 0:
                    AddService();
                    break;
                case 1 when _services.Count > 1:
                    var gone = _services[random.Next(_services.Count)];
                    _services.Remove(gone);
                    _tasks.RemoveAll(t => string.Equals(t.Service, gone.Name, StringComparison.OrdinalIgnoreCase));
                    break;
                case 2 or 3:
                    AddTask(_services[random.Next(_services.Count)].Name);
                    break;
                case 4 when _tasks.Count > 0:
                    _tasks.RemoveAt(random.Next(_tasks.Count));
                    break;
                case 5 when _tasks.Count > 0:
                    // A task replaced: gone, and a new one (a new address) of the same service.
                    var old = _tasks[random.Next(_tasks.Count)];
                    _tasks.Remove(old);
                    AddTask(old.Service);
                    break;
                case 6 when _tasks.Count > 0:
                    var task = _tasks[random.Next(_tasks.Count)];
                    if (!_unhealthy.Remove(task.Name))
                    {
                        _unhealthy.Add(task.Name);
                    }

                    break;
                case 7 when _tasks.Count > 0:
                    var at = random.Next(_tasks.Count);
                    _tasks[at] = _tasks[at] with { State = _tasks[at].State == TaskState.Running ? TaskState.Draining : TaskState.Running };
                    break;
                default:
                    var i = random.Next(_services.Count);
                    _services[i] = Modes(_services[i]);
                    break;
            }
        }

        private void AddService()
        {
            var index = _nextService++;
            var name = string.Create(CultureInfo.InvariantCulture, $"s{index:D3}");
            _services.Add(Modes(new ClusterService { Name = name, FirewallMark = 0x100 + index }));
            for (var k = random.Next(4); k > 0; k--)
            {
                AddTask(name);
            }
        }

        /// <summary>The service with its ports and balancing drawn again (same published ports range: its own).</summary>
        private ClusterService Modes(ClusterService service)
        {
            var index = service.FirewallMark - 0x100;
            var ports = new List<PublishedPort>();
            for (var p = random.Next(1, 3) - 1; p >= 0; p--)
            {
                ports.Add(new PublishedPort(20000 + (index * 2) + p, 80 + random.Next(2), random.Next(3) == 0 ? TransportProtocol.Udp : TransportProtocol.Tcp)
                {
                    Traffic = random.Next(4) == 0 ? TrafficPolicy.Local : TrafficPolicy.Cluster,
                    Mode = random.Next(10) == 0 ? PublishMode.Host : PublishMode.Ingress,
                });
            }

            return service with
            {
                Mode = ServiceMode.Vip,
                Ports = ports,
                LoadBalancing = random.Next(4) == 0 ? LoadBalancing.Maglev : LoadBalancing.RoundRobin,
                Affinity = random.Next(6) == 0 ? Affinity.SourceIp : Affinity.None,
                HealthCheck = random.Next(2) == 0 ? new HealthCheck() : null,
            };
        }

        private void AddTask(string service)
        {
            var index = _nextTask++;
            _tasks.Add(new ServiceTask
            {
                Name = string.Create(CultureInfo.InvariantCulture, $"{service}.{index}"),
                Service = random.Next(8) == 0 ? service.ToUpperInvariant() : service, // names match ignoring case
                Node = random.Next(2) == 0 ? "n1" : "n2",
                Addresses = new Dictionary<string, string> { [OverlayNetwork.IngressName] = string.Create(CultureInfo.InvariantCulture, $"10.0.{index / 250}.{(index % 250) + 2}") },
            });
        }
    }
}
