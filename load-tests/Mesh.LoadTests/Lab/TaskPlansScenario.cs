using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Planning;
using Mesh.LoadTests.Cli;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// The task loop's planning at scale, no lab, no kernel: N services with a VIP on one user network (<c>appnet</c>), T
/// tasks each on the ingress network and <c>appnet</c>, the first L services' first task local to the planning node
/// with a namespace. Times <see cref="NodePlanner.PlanTasks"/> (every local task's namespace: its ingress rules and its
/// east-west VIPs, which hold every service of <c>appnet</c>) for both dataplanes, fastest of the rounds, against one
/// task's VIPs planned alone (<see cref="NodePlanner.TaskVips(ClusterState, ServiceTask)"/>) × L: what a pass cost
/// while each task's VIPs were planned for it alone. Checks that every local task's plan holds what its own would.
/// </summary>
public static class TaskPlansScenario
{
    private const string Node = "node0";
    private const string Network = "appnet";

    public static Task<int> RunAsync(int services, int tasksPerService, int local, Settings s, CancellationToken ct)
    {
        if (services * tasksPerService > 60_000 || local > services)
        {
            Console.Error.WriteLine($"task-plans: {services} x {tasksPerService} tasks must fit the networks' /16 (60,000), and {local} local tasks at most one per service");
            return Task.FromResult(2);
        }

        var state = MakeState(services, tasksPerService, local);
        var rounds = s.Smoke ? 2 : Math.Max(3, s.Rounds);
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# task-plans: the task loop's planning with every service on one user network").AppendLine();
        md.AppendLine(inv, $"{Environment.ProcessorCount} cores; {services:N0} services with a VIP on `{Network}`, {tasksPerService} tasks each (ingress + `{Network}`), {local} of them local to the planning node with a namespace; fastest of {rounds} rounds after one uncounted.").AppendLine();
        md.AppendLine("| dataplane | `PlanTasks` (every local task) | one task's VIPs alone | × local tasks | VIP services per task | the executor: one task's table planned whole against what it wrote (no change), per namespace per pass |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var nftables in new[] { true, false })
        {
            ct.ThrowIfCancellationRequested();
            var planner = new NodePlanner(nftables, new NodeNetworkOptions { IngressSandbox = "mesh-bench-sbx" }, new IpvsOptions(), new NetworkNamespacePath("/nonexistent/host"));
            var dns = new Dictionary<string, DnsPorts>();
            var plans = planner.PlanTasks(state, Node, dns);
            var first = state.Tasks.First(t => t.Node == Node);
            var alone = planner.TaskVips(state, first);
            var perTask = nftables ? alone.Table!.Maps.Single(m => m.Name == "vips").Elements.Count : alone.Services.Count;
            if (plans.Count != local || perTask != services || plans.Any(p => !SameVips(p.Vips, alone)))
            {
                Console.Error.WriteLine($"task-plans: expected {local} task plans whose VIPs hold all {services} services; got {plans.Count} plans, {perTask} services in the first task's own");
                return Task.FromResult(1);
            }

            // The nftables executor plans a task's table (built flat) whole against what it wrote, in every namespace, every
            // pass: an equal table made anew must plan to nothing.
            var written = nftables ? NftPlanner.Expected(alone.Table!) : null;
            if (written is not null && NftPlanner.Plan(planner.TaskVips(state, first).Table!, written) is not null)
            {
                Console.Error.WriteLine("task-plans: an equal task table planned against what was written is not a no-op");
                return Task.FromResult(1);
            }

            double planAll = double.MaxValue, one = double.MaxValue, diff = double.MaxValue;
            for (var r = 0; r < rounds; r++)
            {
                var clock = Stopwatch.StartNew();
                planner.PlanTasks(state, Node, dns);
                planAll = Math.Min(planAll, clock.Elapsed.TotalMilliseconds);
                clock.Restart();
                var again = planner.TaskVips(state, first);
                one = Math.Min(one, clock.Elapsed.TotalMilliseconds);
                if (written is not null)
                {
                    clock.Restart();
                    NftPlanner.Plan(again.Table!, written);
                    diff = Math.Min(diff, clock.Elapsed.TotalMilliseconds);
                }
            }

            var diffText = written is null ? "" : string.Create(inv, $"{diff:0.0} ms; × local tasks {diff * local:0} ms");
            Console.Error.WriteLine(string.Create(inv, $"task-plans: {(nftables ? "nftables" : "ipvs")}: PlanTasks {planAll:0.0} ms, one task's VIPs {one:0.0} ms, its table planned against what was written {diffText}"));
            md.AppendLine(inv, $"| {(nftables ? "nftables" : "ipvs")} | {planAll:0.0} ms | {one:0.0} ms | {one * local:0} ms | {perTask:N0} | {(written is null ? "" : diffText)} |");
        }

        var dir = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"task-plans-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "report.md"), md.ToString());
        Console.Out.Write(md);
        return Task.FromResult(0);
    }

    /// <summary>The same east-west objects: the nftables table's elements, or the IPVS services, their destinations and the mark rules.</summary>
    private static bool SameVips(BackendChoice a, BackendChoice b) => a.Table is { } t
        ? b.Table is { } u && t.Maps.Zip(u.Maps).All(p => p.First.Elements.Select(e => e.Text).SequenceEqual(p.Second.Elements.Select(e => e.Text)))
        : b.Table is null
          && a.Services.Select(x => (x.Name, x.Service)).SequenceEqual(b.Services.Select(x => (x.Name, x.Service)))
          && a.Services.Zip(b.Services).All(p => p.First.Destinations.SequenceEqual(p.Second.Destinations))
          && a.Marks.Chains.SelectMany(c => c.Rules).SequenceEqual(b.Marks.Chains.SelectMany(c => c.Rules));

    private static ClusterState MakeState(int services, int tasksPerService, int local)
    {
        static string Address(int octet2, int index) => string.Create(CultureInfo.InvariantCulture, $"10.{octet2}.{index / 250}.{1 + (index % 250)}");
        var list = new ClusterService[services];
        var tasks = new ServiceTask[services * tasksPerService];
        for (var i = 0; i < services; i++)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"s{i:D5}");
            list[i] = new ClusterService { Name = name, FirewallMark = 0x100 + i, Networks = [Network], Vips = new Dictionary<string, string> { [Network] = Address(2, i) } };
            for (var k = 0; k < tasksPerService; k++)
            {
                var index = (i * tasksPerService) + k;
                var isLocal = k == 0 && i < local;
                tasks[index] = new ServiceTask
                {
                    Name = string.Create(CultureInfo.InvariantCulture, $"{name}.{k + 1}"),
                    Service = name,
                    Node = isLocal ? Node : "node1",
                    NetnsPath = isLocal ? string.Create(CultureInfo.InvariantCulture, $"/run/netns/mesh-bench-t{i}") : null,
                    Addresses = new Dictionary<string, string> { [OverlayNetwork.IngressName] = Address(255, 500 + index), [Network] = Address(1, index) },
                };
            }
        }

        return new ClusterState
        {
            Revision = 1,
            Networks = [new OverlayNetwork(Network, "10.1.0.0/16", 4097)],
            Nodes = [new ClusterNode { Name = Node, AdvertiseAddress = "198.18.0.11", IngressSandboxIp = "10.255.0.2" }, new ClusterNode { Name = "node1", AdvertiseAddress = "198.18.0.12", IngressSandboxIp = "10.255.0.3" }],
            Services = list,
            Tasks = tasks,
        };
    }
}
