using System.Net.NetworkInformation;
using System.Net.Sockets;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ipvs;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Trace;

/// <summary>
/// Reads this node's live kernel state for a trace (never the executors' cached view: the point is what the kernel
/// holds now) and walks it with <see cref="Tracer"/>. Read-only: it lists, it never writes. The store only names what
/// the kernel shows (which task and node an address is); with the store unreachable the trace still runs, unnamed.
/// </summary>
public sealed partial class NodeTracer(
    ICommandRunner runner,
    IptablesExecutor iptables,
    HostRulesWriter hostRules,
    TaskRulesWriter taskRules,
    IngressSandbox sandbox,
    NodeNetworkOptions network,
    NodeStatus status,
    IClusterStore store,
    Http.HttpEntry entry,
    ILogger<NodeTracer> logger)
{
    private readonly EntryRouteMatcher _matcher = new();

    /// <summary>At most this many local tasks' namespaces are listed per trace: each costs a process or two.</summary>
    public const int MaxTaskReads = 16;

    public async Task<TraceResult> TraceAsync(TraceRequest request, CancellationToken ct)
    {
        try
        {
            return await WalkAsync(request, ct).ConfigureAwait(false);
        }
        catch (CommandFailedException e)
        {
            // What the tool printed goes to this node's log only; the client gets the summary (TraceEndpoint).
            LogReadFailed(e, request.Proto, request.Address, request.Port);
            throw;
        }
    }

    /// <summary>
    /// An HTTP request to this node: the kernel's host rules for the connection, then the running L7 entry's own
    /// matching (<see cref="EntryRouteMatcher"/>) for its Host and path, the route's cluster and destinations with health.
    /// </summary>
    public async Task<TraceResult> TraceHttpAsync(HttpTraceRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            var (snapshot, netns, storeNote) = await SnapshotAsync(ct).ConfigureAwait(false);
            var match = entry.Running is { } running && entry.Port == request.Connection.Port
                ? await _matcher.MatchAsync(running, request.Host, request.Path, ct).ConfigureAwait(false)
                : null;
            snapshot = snapshot with { LocalTaskRules = await TaskRulesAsync(HttpTracer.LocalTaskAddresses(match, snapshot), netns, ct).ConfigureAwait(false) };
            var result = HttpTracer.Trace(request, snapshot, entry.Port, match);
            return storeNote is null ? result : result with { Notes = [.. result.Notes, storeNote] };
        }
        catch (CommandFailedException e)
        {
            LogReadFailed(e, "http", request.Connection.Address, request.Connection.Port);
            throw;
        }
    }

    private async Task<TraceResult> WalkAsync(TraceRequest request, CancellationToken ct)
    {
        var (snapshot, netns, storeNote) = await SnapshotAsync(ct).ConfigureAwait(false);
        var rules = await TaskRulesAsync(Tracer.LocalTaskAddresses(request, snapshot), netns, ct).ConfigureAwait(false);
        var result = Tracer.Trace(request, snapshot with { LocalTaskRules = rules });
        return storeNote is null ? result : result with { Notes = [.. result.Notes, storeNote] };
    }

    private async Task<(NodeSnapshot Snapshot, Dictionary<string, NetworkNamespacePath> Netns, string? StoreNote)> SnapshotAsync(CancellationToken ct)
    {
        var (tasks, netns, storeNote) = await TasksAsync(ct).ConfigureAwait(false);
        var save = iptables.Flavour.Save;
        var (hostNat, hostFilter) = await hostRules.ReadForTraceAsync(ct).ConfigureAwait(false);
        var nft = status.Dataplane == "nftables" ? await SandboxTableAsync(ct).ConfigureAwait(false) : null;
        var ipvs = status.Dataplane == "ipvs" ? await IpvsSandboxAsync(save, ct).ConfigureAwait(false) : null;
        var snapshot = new NodeSnapshot(
            status.Node,
            status.Dataplane,
            sandbox.Netns.Path is { } path ? Path.GetFileName(path) : network.IngressSandbox,
            network.GatewayBridge,
            LocalAddresses(),
            ProcNetListeners.Read(),
            hostNat,
            hostFilter,
            nft,
            tasks,
            new Dictionary<string, string>(),
            ipvs);
        return (snapshot, netns, storeNote);
    }

    /// <summary>The rules of the local tasks at these ingress addresses (at most <see cref="MaxTaskReads"/>).</summary>
    private async Task<Dictionary<string, string>> TaskRulesAsync(IEnumerable<string> addresses, Dictionary<string, NetworkNamespacePath> netns, CancellationToken ct)
    {
        var rules = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var address in addresses.Take(MaxTaskReads))
        {
            if (netns.TryGetValue(address, out var taskNetns) && await TaskRulesAsync(taskNetns, ct).ConfigureAwait(false) is { } text)
            {
                rules[address] = text;
            }
        }

        return rules;
    }

    private async Task<(Dictionary<string, TracedTask> Tasks, Dictionary<string, NetworkNamespacePath> Netns, string? Note)> TasksAsync(CancellationToken ct)
    {
        var tasks = new Dictionary<string, TracedTask>(StringComparer.Ordinal);
        var netns = new Dictionary<string, NetworkNamespacePath>(StringComparer.Ordinal);
        try
        {
            var state = await store.GetStateAsync(ct).ConfigureAwait(false);
            foreach (var task in state.Tasks)
            {
                if (task.Addresses.GetValueOrDefault(OverlayNetwork.IngressName) is { } address)
                {
                    tasks.TryAdd(address, new TracedTask(task.Name, task.Service, task.Node));
                    if (task.Node == status.Node && task.NetnsPath is { } path && task.State == TaskState.Running)
                    {
                        netns.TryAdd(address, new NetworkNamespacePath(path));
                    }
                }
            }

            return (tasks, netns, null);
        }
        catch (StoreUnavailableException e)
        {
            return (tasks, netns, $"the store is unreachable ({e.Message}): backends are shown by address only, and no task's rules were read");
        }
    }

    private async Task<string?> SandboxTableAsync(CancellationToken ct)
    {
        var result = await runner.RunInAsync(sandbox.Netns, "nft", ["-j", "list", "table", IngressSandboxTable.Family, IngressSandboxTable.Name], null, ct).ConfigureAwait(false);
        if (result.ExitCode == 0)
        {
            return result.Stdout;
        }

        // As NftExecutor.ReadAsync: a missing table (or no nf_tables at all) is a state to report, anything else a failure.
        return result.Stderr.Contains("No such file", StringComparison.Ordinal) || result.Stderr.Contains("Protocol not supported", StringComparison.Ordinal)
            ? null
            : throw new CommandFailedException($"nft -j list table ip mesh (in {sandbox.Netns})", result);
    }

    /// <summary>The ipvs sandbox: its mangle and nat tables, and its fwmark services dumped over netlink (what ipvsadm -Ln shows).</summary>
    private async Task<IpvsSandboxView> IpvsSandboxAsync(string save, CancellationToken ct)
    {
        var rules = await runner.RunCheckedInAsync(sandbox.Netns, save, [], null, ct).ConfigureAwait(false);
        var (mangle, nat) = (IptablesSaveText.Section(rules, "mangle"), IptablesSaveText.Section(rules, "nat"));
        using var handle = IpvsHandle.Open(sandbox.Netns.Path);
        var services = handle.GetServices()
            .Where(s => s.IsFirewallMark)
            .Select(s => new IpvsVirtualService(
                s.FirewallMark,
                s.Scheduler,
                handle.GetDestinations(s)
                    .Select(d => new IpvsRealServer(d.Address.ToString(), d.Port, d.Weight, MethodName(d.ForwardingMethod), d.ActiveConnections))
                    .OrderBy(r => r.Address, StringComparer.Ordinal)
                    .ToArray()))
            .ToArray();
        return new IpvsSandboxView(mangle, nat, services);
    }

    /// <summary>As ipvsadm -Ln names the forwarding method.</summary>
    private static string MethodName(ForwardingMethod method) => method switch
    {
        ForwardingMethod.Masquerade => "Masq",
        ForwardingMethod.Local => "Local",
        ForwardingMethod.Tunnel => "Tunnel",
        _ => "Route",
    };

    /// <summary>The task's nat and filter tables; null when its namespace is gone or unreadable (the trace says so).</summary>
    private Task<string?> TaskRulesAsync(NetworkNamespacePath netns, CancellationToken ct) => taskRules.ReadForTraceAsync(netns, Tracer.TaskTables, ct);

    /// <summary>The IPv4 addresses of this namespace's interfaces (the daemon runs in its node's namespace).</summary>
    private static HashSet<string> LocalAddresses() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Where(a => a.Address.AddressFamily == AddressFamily.InterNetwork)
            .Select(a => a.Address.ToString())
            .ToHashSet(StringComparer.Ordinal);
}
