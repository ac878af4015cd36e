using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Planning;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ipvs.KernelTests;

/// <summary>
/// The daemon's ipvs dataplane against the real kernel, one fresh namespace per test (cheaper than the lab, and
/// exact about idempotence): converge, converge again with no change, drain, remove, timeouts.
/// </summary>
public static class IpvsDataplaneKernelTests
{
    public static IReadOnlyList<(string, Action)> All() =>
    [
        ("Dataplane_Sandbox_ConvergesThenIsIdempotent", Sandbox),
        ("Dataplane_Sandbox_DrainsThenRemoves", SandboxDrain),
        ("Dataplane_Task_VipServiceTimeoutsAndCleanup", TaskNamespace),
        ("Dataplane_Task_OnNoVipNetworkRunsNoIptables", TaskOffVipNetworks),
        ("Dataplane_Sandbox_MaglevIsMhAndSourceIpIsPersistence", Balancing),
        ("Dataplane_Sandbox_L4BackendMetricsReadTheRealServers", L4BackendMetrics),
    ];

    private static ClusterState Cluster(int webTasks)
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec
        {
            Name = "web",
            Ports = [new PublishedPort(8080, 80, TransportProtocol.Tcp), new PublishedPort(8080, 80, TransportProtocol.Udp)],
            Networks = ["appnet"],
        }).State;
        for (var i = 1; i <= webTasks; i++)
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = $"web.{i}", Service = "web", Node = "n1" }).State;
        }

        return state;
    }

    private static IpvsDataplane Dataplane(TestNamespace ns, IpvsOptions options, TimeProvider? clock = null, ICommandRunner? runner = null)
    {
        runner ??= new ProcessCommandRunner();
        var network = new NodeNetworkOptions { IngressSandbox = ns.Name };
        return new IpvsDataplane(new IptablesExecutor(runner, IptablesFlavour.Legacy), new IngressSandbox(new NetlinkLinks(), network), options, NullLogger<IpvsDataplane>.Instance, clock);
    }

    /// <summary>The ipvs dataplane's planner, as the daemon has it (the services' plan uses the default scheduler).</summary>
    private static readonly NodePlanner Planner = new(false, new NodeNetworkOptions(), new IpvsOptions());

    private static bool Apply(IpvsDataplane dp, ClusterState state) =>
        dp.ConvergeSandboxAsync(Planner.PlanSandbox(state, state.Nodes[0], null).Backends, CancellationToken.None).GetAwaiter().GetResult();

    private static bool ApplyTask(IpvsDataplane dp, ClusterState state, ServiceTask? task, NetworkNamespacePath netns) =>
        dp.ConvergeTaskAsync(netns, task is null ? BackendChoice.None : Planner.TaskVips(state, task), CancellationToken.None).GetAwaiter().GetResult();

    private static string Mangle(TestNamespace ns) => Shell.Run("ip", "netns", "exec", ns.Name, "iptables-legacy-save", "-t", "mangle");

    private static void Sandbox()
    {
        using var ns = new TestNamespace("mdp");
        var dp = Dataplane(ns, new IpvsOptions());
        var state = Cluster(3);
        Check.True(Apply(dp, state), "first pass changes the kernel");
        Check.True(!Apply(dp, state), "second pass over the same state changes nothing (canonical rules, equal IPVS)");

        var addresses = state.Tasks.Select(t => t.Addresses["ingress"]).ToArray();
        var ipvsadm = ns.Ipvsadm("-Ln");
        Check.ContainsLines(ipvsadm, "ipvsadm -Ln", ["FWM 256 rr", .. addresses.Select(a => $"-> {a}:0 Masq 1 0 0")]);
        Check.ContainsLines(Mangle(ns), "mangle",
            "-A PREROUTING -j MESH-INGRESS",
            "-A MESH-INGRESS -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff",
            "-A MESH-INGRESS -p udp -m udp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff");
        Check.ContainsLines(Shell.Run("ip", "netns", "exec", ns.Name, "iptables-legacy-save", "-t", "nat"), "nat",
            $"-A MESH-POSTROUTING -d 10.255.0.0/16 -m ipvs --ipvs -j SNAT --to-source {state.Nodes[0].IngressSandboxIp}");
        Check.Equal("1", Shell.Run("ip", "netns", "exec", ns.Name, "cat", "/proc/sys/net/ipv4/vs/conntrack").Trim(), "vs.conntrack");

        var gone = StateTransitions.RemoveService(state, "web");
        Check.True(Apply(dp, gone), "removing the service changes the kernel");
        Check.True(!ns.Ipvsadm("-Ln").Contains("FWM", StringComparison.Ordinal), "no FWM service left");
        Check.True(!Mangle(ns).Contains("MARK", StringComparison.Ordinal), "no MARK rule left");
        Check.True(!Apply(dp, gone), "and then nothing more to do");
    }

    /// <summary>
    /// The per-backend L4 metrics' ipvs source against the sandbox the dataplane converged: one sample per task, keyed
    /// by the service's mark and the real server's address (as <c>ipvsadm -Ln</c> lists them), with the counters.
    /// </summary>
    private static void L4BackendMetrics()
    {
        using var ns = new TestNamespace("mdp");
        var dp = Dataplane(ns, new IpvsOptions());
        var state = Cluster(3);
        Apply(dp, state);
        var extra = StateTransitions.AddTask(state, new TaskSpec { Name = "web.4", Service = "web", Node = "n1" }).State; // not applied: no real server

        var samples = new Mesh.Ingress.Telemetry.L4.IpvsBackendSource(ns.Path).Read(Mesh.Ingress.Telemetry.L4.L4BackendDirectory.From(extra));

        Check.Equal("web.1,web.2,web.3", string.Join(',', samples.Select(s => s.Key.Task).Order(StringComparer.Ordinal)), "one sample per real server of a known task");
        foreach (var sample in samples)
        {
            Check.Equal(("web", "8080/tcp,8080/udp"), (sample.Key.Service, sample.Key.Port), $"{sample.Key.Task}: labels");
            Check.Equal((0L, 0L), (sample.Active, sample.Inactive), $"{sample.Key.Task}: no connection yet");
            Check.True(sample.Counters is { Opened: 0, InPackets: 0, OutBytes: 0 }, $"{sample.Key.Task}: IPVS's counters read, all 0");
        }
    }

    /// <summary>
    /// A task on no VIP network wants no east-west marks: its pass starts no iptables process (a resync's
    /// iptables-legacy-save cost seconds per task under user-mode-linux) and leaves the namespace without a mangle
    /// table (the save used to instantiate one). Marks Mesh left there earlier are still found and removed.
    /// </summary>
    private static void TaskOffVipNetworks()
    {
        using var ns = new TestNamespace("mdo");
        var runner = new CountingRunner(new ProcessCommandRunner());
        var dp = Dataplane(ns, new IpvsOptions(), runner: runner);
        var state = StateTransitions.CreateService(Cluster(1), new ServiceSpec { Name = "solo", Ports = [new PublishedPort(8090, 80)] }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "solo.1", Service = "solo", Node = "n1" }).State;
        var solo = state.Tasks.Single(t => t.Name == "solo.1");
        var netns = new NetworkNamespacePath(ns.Path);
        bool ApplyTask() => IpvsDataplaneKernelTests.ApplyTask(dp, state, solo, netns);
        string LegacyTables() => NetworkNamespace.Run(ns.Path, () => File.ReadAllText("/proc/thread-self/net/ip_tables_names"));

        Check.True(!ApplyTask(), "nothing to change");
        Check.Equal("", string.Join("; ", runner.Commands), "no process started");
        Check.True(!LegacyTables().Contains("mangle", StringComparison.Ordinal), $"no mangle table instantiated (x_tables: {LegacyTables().ReplaceLineEndings(",")})");

        Shell.Run(["ip", "netns", "exec", ns.Name, "iptables-legacy-restore", "--noflush"],
            "*mangle\n:MESH-VIP-OUTPUT - [0:0]\n-A MESH-VIP-OUTPUT -d 10.0.1.250/32 -j MARK --set-xmark 0x100/0xffffffff\n-A OUTPUT -j MESH-VIP-OUTPUT\nCOMMIT\n");
        Check.True(ApplyTask(), "marks left by an earlier pass are removed");
        Check.True(!Mangle(ns).Contains("MESH", StringComparison.Ordinal), "no MESH chain left");
        Check.True(!ApplyTask(), "and then nothing more to do");
    }

    /// <summary>Runs the commands and records their command lines.</summary>
    private sealed class CountingRunner(ICommandRunner inner) : ICommandRunner
    {
        public List<string> Commands { get; } = [];

        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
        {
            lock (Commands)
            {
                Commands.Add(CommandRunnerExtensions.Describe(file, arguments));
            }

            return inner.RunAsync(file, arguments, standardInput, cancellationToken);
        }
    }

    private static void SandboxDrain()
    {
        using var ns = new TestNamespace("mdp");
        // The drain period is measured on a clock the test steps: under an emulated or loaded kernel the checks
        // below can take longer than any period worth waiting out (45 s seen), and the test is about the logic.
        var clock = new SteppedClock();
        var drain = TimeSpan.FromSeconds(5);
        var dp = Dataplane(ns, new IpvsOptions { DrainPeriod = drain }, clock);
        var state = Cluster(2);
        Apply(dp, state);
        var leaving = state.Tasks.Single(t => t.Name == "web.2").Addresses["ingress"];
        var after = StateTransitions.RemoveTask(state, "web.2");
        Check.True(Apply(dp, after), "the task's removal changes the kernel");
        Check.ContainsLines(ns.Ipvsadm("-Ln"), "drained", $"-> {leaving}:0 Masq 0 0 0");
        clock.Advance(drain - TimeSpan.FromMilliseconds(100));
        Check.True(!Apply(dp, after), "within the drain period nothing changes");
        Check.ContainsLines(ns.Ipvsadm("-Ln"), "still drained", $"-> {leaving}:0 Masq 0 0 0");
        clock.Advance(TimeSpan.FromMilliseconds(200));
        Check.True(Apply(dp, after), "after the drain period the server is removed");
        Check.True(!ns.Ipvsadm("-Ln").Contains(leaving + ":", StringComparison.Ordinal), $"{leaving} removed");
    }

    /// <summary>
    /// <c>--lb maglev</c> programs the <c>mh</c> scheduler (Maglev hashing of the source address in the kernel) and
    /// <c>--affinity source-ip</c> a persistent service; changing the policy updates the service in place (its real
    /// servers and their connections stay), read back with ipvsadm.
    /// </summary>
    private static void Balancing()
    {
        using var ns = new TestNamespace("mdb");
        var dp = Dataplane(ns, new IpvsOptions());
        var state = StateTransitions.UpdateService(Cluster(4), "web", new ServiceUpdate { LoadBalancing = LoadBalancing.Maglev }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "sticky", Ports = [new PublishedPort(8081, 80)], Affinity = Affinity.SourceIp }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "sticky.1", Service = "sticky", Node = "n1" }).State;
        Check.True(Apply(dp, state), "first pass changes the kernel");
        Check.True(!Apply(dp, state), "second pass changes nothing (mh and persistence read back equal)");
        var web = state.Tasks.Where(t => t.Service == "web").Select(t => t.Addresses["ingress"]).ToArray();
        Check.ContainsLines(ns.Ipvsadm("-Ln"), "ipvsadm -Ln", ["FWM 256 mh", "FWM 257 rr persistent 300", .. web.Select(a => $"-> {a}:0 Masq 1 0 0")]);

        var rr = StateTransitions.UpdateService(state, "web", new ServiceUpdate { LoadBalancing = LoadBalancing.RoundRobin }).State;
        rr = StateTransitions.UpdateService(rr, "sticky", new ServiceUpdate { Affinity = Affinity.None }).State;
        Check.True(Apply(dp, rr), "the policy change changes the kernel");
        var after = ns.Ipvsadm("-Ln");
        Check.ContainsLines(after, "ipvsadm -Ln after", ["FWM 256 rr", "FWM 257 rr", .. web.Select(a => $"-> {a}:0 Masq 1 0 0")]);
        Check.True(!after.Contains("persistent", StringComparison.Ordinal), "no persistence left");
    }

    /// <summary>A clock that moves only when told to.</summary>
    private sealed class SteppedClock : TimeProvider
    {
        private long _ticks = 1;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private static void TaskNamespace()
    {
        using var ns = new TestNamespace("mdt");
        var dp = Dataplane(ns, new IpvsOptions { TcpTimeout = TimeSpan.FromHours(2), UdpTimeout = TimeSpan.FromSeconds(60), DrainPeriod = TimeSpan.Zero });
        var state = Cluster(2);
        var task = state.Tasks[0];
        var netns = new NetworkNamespacePath(ns.Path);
        bool ApplyTask(ServiceTask? t, ClusterState s) => IpvsDataplaneKernelTests.ApplyTask(dp, s, t, netns);

        Check.True(ApplyTask(task, state), "first pass changes the kernel");
        Check.True(!ApplyTask(task, state), "second pass changes nothing");
        var vip = state.Services[0].Vips["appnet"];
        Check.ContainsLines(ns.Ipvsadm("-Ln"), "ipvsadm -Ln", ["FWM 256 rr", .. state.Tasks.Select(t => $"-> {t.Addresses["appnet"]}:0 Masq 1 0 0")]);
        Check.ContainsLines(Mangle(ns), "mangle", "-A OUTPUT -j MESH-VIP-OUTPUT", $"-A MESH-VIP-OUTPUT -d {vip}/32 -j MARK --set-xmark 0x100/0xffffffff");
        Check.ContainsLines(ns.Ipvsadm("-L", "--timeout"), "timeouts", "Timeout (tcp tcpfin udp): 7200 120 60");

        var fewer = StateTransitions.RemoveTask(state, "web.2");
        Check.True(ApplyTask(task, fewer), "a gone task is removed at once with no drain period");
        Check.True(!ns.Ipvsadm("-Ln").Contains(state.Tasks[1].Addresses["appnet"] + ":", StringComparison.Ordinal), "web.2 gone");

        Check.True(ApplyTask(null, fewer), "a null task removes Mesh's objects");
        Check.True(!ns.Ipvsadm("-Ln").Contains("FWM", StringComparison.Ordinal), "no FWM service left");
        Check.True(!Mangle(ns).Contains("MESH", StringComparison.Ordinal), "no MESH chain left");
        Check.True(!ApplyTask(null, fewer), "and then nothing more to do");
    }
}
