using System.Diagnostics;
using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.LoadTests.Lab;

/// <summary>The rules a lane's sandbox holds.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<FirstPacketLayout>))]
public enum FirstPacketLayout
{
    /// <summary>The daemon's sandbox table (<see cref="NodePlanner.PlanSandbox"/>, written by <see cref="NfTablesExecutor"/>).</summary>
    Mesh,

    /// <summary><see cref="ScaleScenario.NaiveIptables"/>: a jump per published port, walked in order (the reference).</summary>
    NaiveIptables,
}

/// <summary>
/// One data path of <see cref="FirstPacketScenario"/>, real kernel objects only: the shared client namespace →
/// veth → a sandbox namespace (<c>eth1</c>, as the daemon's sandbox faces the node) holding N services' rules → veth
/// (<c>eth0</c>, the sandbox's ingress leg, <see cref="ScaleScenario.SandboxIngressAddress"/>/16) → a backend namespace
/// that owns the target service's task addresses (on <c>lo</c>; it answers ARP for them on its leg) and runs nginx on
/// the target port and on the published one (the naive layout DNATs without changing the port). The sandbox does what
/// the daemon's does: forwards, DNATs the first packet, SNATs it to its ingress address, and conntrack un-NATs the
/// replies, so no route points past it. Created by <see cref="CreateAsync"/>, deleted by <see cref="DisposeAsync"/>.
/// </summary>
public sealed class FirstPacketLane : IAsyncDisposable
{
    public const string ClientNamespace = "mesh-bench-fp-client";
    private const string NamePrefix = "mesh-bench-fp-";
    private const string BackendLegAddress = "10.255.0.3/16";

    private readonly ICommandRunner _runner;
    private readonly string _work;
    private Process? _server;

    private FirstPacketLane(ICommandRunner runner, FirstPacketLayout layout, int services, int index, string work)
    {
        (_runner, Layout, Services, Index, _work) = (runner, layout, services, index, work);
    }

    public FirstPacketLayout Layout { get; }

    public int Services { get; }

    public int Index { get; }

    public string Name => string.Create(CultureInfo.InvariantCulture, $"{(Layout == FirstPacketLayout.Mesh ? "mesh" : "naive-iptables")}-{Services}");

    public string SandboxNamespace => SandboxOf(Index);

    public string BackendNamespace => BackendOf(Index);

    /// <summary>The sandbox's address on the client's side: the published port is open on it (<c>fib daddr type local</c>).</summary>
    public string SandboxAddress => string.Create(CultureInfo.InvariantCulture, $"172.18.{Index + 1}.2");

    public Uri Url(FirstPacketTarget target) => new(string.Create(CultureInfo.InvariantCulture, $"http://{SandboxAddress}:{target.PublishedPort}/"));

    /// <summary>How long writing the sandbox's rules took (the netlink batch, or <c>iptables-restore</c>).</summary>
    public TimeSpan Programming { get; private set; }

    public static string SandboxOf(int index) => string.Create(CultureInfo.InvariantCulture, $"{NamePrefix}sandbox-{index}");

    public static string BackendOf(int index) => string.Create(CultureInfo.InvariantCulture, $"{NamePrefix}backend-{index}");

    /// <summary>The client's namespace, shared by the lanes (one leg per lane); a port range wide enough for a new connection per request.</summary>
    public static async Task EnsureClientAsync(ICommandRunner runner, CancellationToken ct)
    {
        await new LinkTool(runner).EnsureNamespaceAsync(ClientNamespace, ct).ConfigureAwait(false);
        var client = NetworkNamespacePath.Named(ClientNamespace);
        await runner.RunCheckedInAsync(client, "ip", ["link", "set", "lo", "up"], null, ct).ConfigureAwait(false);
        await runner.RunCheckedInAsync(client, "sysctl", ["-q", "-w", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"], null, ct).ConfigureAwait(false);
    }

    /// <summary>Builds the lane, programs its sandbox for <paramref name="state"/> and starts its server (ready when this returns).</summary>
    public static async Task<FirstPacketLane> CreateAsync(ICommandRunner runner, IptablesFlavour flavour, FirstPacketLayout layout, ClusterState state, FirstPacketTarget target,
        int index, string work, int? serverCpu, CancellationToken ct)
    {
        var lane = new FirstPacketLane(runner, layout, state.Services.Count, index, Path.Combine(work, SandboxOf(index)));
        try
        {
            await lane.WireAsync(target, ct).ConfigureAwait(false);
            await lane.ProgramAsync(flavour, state, ct).ConfigureAwait(false);
            await lane.StartServerAsync(target, serverCpu, ct).ConfigureAwait(false);
            return lane;
        }
        catch
        {
            await lane.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task WireAsync(FirstPacketTarget target, CancellationToken ct)
    {
        var links = new LinkTool(_runner);
        var (client, sandbox, backend) = (NetworkNamespacePath.Named(ClientNamespace), NetworkNamespacePath.Named(SandboxNamespace), NetworkNamespacePath.Named(BackendNamespace));
        await links.EnsureNamespaceAsync(SandboxNamespace, ct).ConfigureAwait(false);
        await links.EnsureNamespaceAsync(BackendNamespace, ct).ConfigureAwait(false);
        var clientLeg = string.Create(CultureInfo.InvariantCulture, $"fp{Index}");
        await links.IpAsync(client, ["link", "add", clientLeg, "type", "veth", "peer", "name", NodeNetworkOptions.SandboxGatewayInterface, "netns", SandboxNamespace], ct).ConfigureAwait(false);
        await links.IpAsync(sandbox, ["link", "add", NodeNetworkOptions.SandboxIngressInterface, "type", "veth", "peer", "name", "eth0", "netns", BackendNamespace], ct).ConfigureAwait(false);

        await links.IpAsync(client, ["address", "add", string.Create(CultureInfo.InvariantCulture, $"172.18.{Index + 1}.1/24"), "dev", clientLeg], ct).ConfigureAwait(false);
        await links.IpAsync(client, ["link", "set", clientLeg, "up"], ct).ConfigureAwait(false);

        await links.IpAsync(sandbox, ["address", "add", SandboxAddress + "/24", "dev", NodeNetworkOptions.SandboxGatewayInterface], ct).ConfigureAwait(false);
        await links.IpAsync(sandbox, ["address", "add", ScaleScenario.SandboxIngressAddress + "/16", "dev", NodeNetworkOptions.SandboxIngressInterface], ct).ConfigureAwait(false);
        foreach (var link in new[] { "lo", NodeNetworkOptions.SandboxGatewayInterface, NodeNetworkOptions.SandboxIngressInterface })
            await links.IpAsync(sandbox, ["link", "set", link, "up"], ct).ConfigureAwait(false);
        // As IngressSandbox.EnsureAsync: forwarding is the one sysctl the daemon sets in its sandbox.
        await _runner.RunCheckedInAsync(sandbox, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"], null, ct).ConfigureAwait(false);

        await links.IpAsync(backend, ["address", "add", BackendLegAddress, "dev", "eth0"], ct).ConfigureAwait(false);
        foreach (var task in target.Tasks)
            await links.IpAsync(backend, ["address", "add", task + "/32", "dev", "lo"], ct).ConfigureAwait(false);
        foreach (var link in new[] { "lo", "eth0" })
            await links.IpAsync(backend, ["link", "set", link, "up"], ct).ConfigureAwait(false);
    }

    private async Task ProgramAsync(IptablesFlavour flavour, ClusterState state, CancellationToken ct)
    {
        var sandbox = NetworkNamespacePath.Named(SandboxNamespace);
        var clock = Stopwatch.StartNew();
        if (Layout == FirstPacketLayout.Mesh)
        {
            var planner = new NodePlanner(true, new NodeNetworkOptions(), new IpvsOptions());
            var node = new ClusterNode { Name = "node0", AdvertiseAddress = "198.18.0.10", IngressSandboxIp = ScaleScenario.SandboxIngressAddress };
            var desired = planner.PlanSandbox(state, node, null).Backends.Table
                ?? throw new InvalidOperationException($"first-packet: the planner gave lane {Name} no sandbox table");
            using var executor = new NfTablesExecutor(TimeSpan.FromSeconds(30));
            clock.Restart();
            if (!await executor.ConvergeAsync(sandbox, desired, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false))
                throw new InvalidOperationException($"first-packet: writing the sandbox table of lane {Name} into {SandboxNamespace} changed nothing");
        }
        else
        {
            var script = ScaleScenario.NaiveIptables(state, state.Tasks.Count / Math.Max(1, state.Services.Count));
            clock.Restart();
            await _runner.RunCheckedInAsync(sandbox, flavour.Restore, ["-w", "5"], script, ct).ConfigureAwait(false);
        }

        Programming = clock.Elapsed;
    }

    /// <summary>nginx, one worker (on <paramref name="cpu"/>), answering <c>task $server_addr</c>: the address the connection was DNATed to.</summary>
    private async Task StartServerAsync(FirstPacketTarget target, int? cpu, CancellationToken ct)
    {
        Directory.CreateDirectory(_work);
        var config = Path.Combine(_work, "nginx.conf");
        var pidFile = Path.Combine(_work, "nginx.pid");
        File.Delete(pidFile);
        await File.WriteAllTextAsync(config, NginxConfig(_work, target), ct).ConfigureAwait(false);
        List<string> command = ["netns", "exec", BackendNamespace];
        if (cpu is { } c)
            command.AddRange(["taskset", "-c", c.ToString(CultureInfo.InvariantCulture)]);
        command.AddRange(["nginx", "-p", _work, "-c", config, "-e", "stderr"]);
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        command.ForEach(psi.ArgumentList.Add);
        _server = Process.Start(psi) ?? throw new InvalidOperationException($"first-packet: nginx in {BackendNamespace} did not start");
        var output = _server.StandardError.ReadToEndAsync(CancellationToken.None);
        _ = _server.StandardOutput.ReadToEndAsync(CancellationToken.None);

        // nginx writes its pid file once its listening sockets are bound.
        var clock = Stopwatch.StartNew();
        while (!File.Exists(pidFile))
        {
            if (_server.HasExited)
                throw new InvalidOperationException($"first-packet: nginx in {BackendNamespace} exited {_server.ExitCode}: {(await output.ConfigureAwait(false)).Trim()}");
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
                throw new InvalidOperationException($"first-packet: nginx in {BackendNamespace} did not write {pidFile} within 10 s");
            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }

    private static string NginxConfig(string work, FirstPacketTarget target) => NginxConfiguration.Build(work, workers: 1, $$"""
            server {
                listen {{target.TargetPort}};
                listen {{target.PublishedPort}};
                location / { return 200 "{{FirstPacketCheck.BodyPrefix}}$server_addr\n"; }
            }
        """);

    /// <summary>Between rounds: the sandbox's connections forgotten, so every round starts from an empty conntrack table.</summary>
    public Task FlushConntrackAsync(CancellationToken ct) =>
        _runner.RunCheckedInAsync(NetworkNamespacePath.Named(SandboxNamespace), "conntrack", ["-F"], null, ct);

    /// <summary>Stops the server and deletes the lane's namespaces (their links go with them); safe on a half-built lane.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_server is { } server)
        {
            if (!server.HasExited)
                server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            server.Dispose();
            _server = null;
        }

        await DeleteNamespacesAsync(_runner, Index).ConfigureAwait(false);
    }

    /// <summary>Deletes lane <paramref name="index"/>'s namespaces if they exist (also what a crashed run left).</summary>
    public static async Task DeleteNamespacesAsync(ICommandRunner runner, int index)
    {
        foreach (var ns in new[] { SandboxOf(index), BackendOf(index) })
        {
            if (LinkTool.NamespaceExists(ns))
                await runner.RunCheckedAsync("ip", ["netns", "del", ns], null, CancellationToken.None).ConfigureAwait(false);
        }
    }

    public static async Task DeleteClientAsync(ICommandRunner runner)
    {
        if (LinkTool.NamespaceExists(ClientNamespace))
            await runner.RunCheckedAsync("ip", ["netns", "del", ClientNamespace], null, CancellationToken.None).ConfigureAwait(false);
    }
}
