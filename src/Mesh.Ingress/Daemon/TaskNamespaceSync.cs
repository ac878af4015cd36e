using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Planning;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Telemetry;
using Mesh.Ipvs;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>What one pass over the local task namespaces did: the kinds of kernel objects changed, and the tasks that
/// failed or were refused (task name → <see cref="ErrorSummary"/>), which every other task did not wait for.</summary>
public sealed record TaskSyncResult(IReadOnlyList<string> Changed, IReadOnlyDictionary<string, string> Errors);

/// <summary>
/// Each local task's namespace: its embedded DNS listeners, the REDIRECT/INPUT and DNS NAT rules, the east-west VIP
/// backends and its resolv.conf. What Mesh put in a task's namespace goes with the namespace.
/// Nothing is touched for a task until its namespace passed <see cref="TaskNamespaceGuard"/> and is not already
/// another local task's (tasks are keyed by the namespace's inode, not by how its path is spelled: the first task in
/// the store's order keeps it). The accepted tasks' DNS listeners are started first (on the ports their rules already
/// name), then the tasks' part of the node's plan is made from those ports (<see cref="NodePlanner.PlanTasks"/>) and
/// each namespace converged to it (<see cref="TaskNamespaceExecutor"/>). A task that is refused or fails is that task's
/// problem alone: it is logged (once per distinct reason) and reported, naming the namespace and the object, and the
/// other tasks still converge in the same pass.
/// </summary>
public sealed partial class TaskNamespaceSync(
    NodePlanner planner,
    TaskNamespaceExecutor executor,
    DataplaneSwitchCleanup otherDataplane,
    TaskRulesWriter taskRules,
    NfTablesExecutor nft,
    TaskResolvers resolvers,
    TaskNamespaceGuard guard,
    DaemonOptions options,
    MeshTelemetry telemetry,
    ILogger<TaskNamespaceSync> logger,
    TaskLegs? legs = null)
{
    /// <summary>How often the namespaces Mesh serves are looked at between passes: a deleted one is cleaned up within this.</summary>
    private static readonly TimeSpan VanishedPoll = TimeSpan.FromMilliseconds(500);

    /// <summary>The reason last logged per failing task, so a task refused on every pass is logged once, not every pass.</summary>
    private Dictionary<string, string> _reported = new(StringComparer.Ordinal);

    /// <summary>The namespaces the last pass saw: one deleted after it looked and before the wait began is not missed.</summary>
    private IReadOnlyList<string> _seenAlive = [];

    private bool _hostUnreadableLogged;

    public async Task<TaskSyncResult> SyncAsync(ClusterState state, CancellationToken ct)
    {
        var changed = new List<string>();
        var errors = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var failures = new Dictionary<string, Exception>(StringComparer.Ordinal);
        var reserved = guard.Reserved();
        if (reserved.HostUnreadable is { } why && !_hostUnreadableLogged)
        {
            _hostUnreadableLogged = true;
            LogHostUnreadable(why);
        }

        var claimed = new Dictionary<NetworkNamespaceId, string>();
        var wanted = new Dictionary<string, (ServiceTask? Task, ClusterService? Service)>(StringComparer.Ordinal);
        foreach (var task in state.Tasks.Where(t => t.Node == options.Node && t.NetnsPath is not null))
        {
            if (state.Services.FirstOrDefault(s => s.Name == task.Service) is not { } service)
            {
                continue;
            }

            try
            {
                var id = guard.Check(task.NetnsPath, reserved);
                if (claimed.TryGetValue(id, out var owner))
                {
                    throw new TaskRefusedException($"netnsPath '{task.NetnsPath}' is the network namespace of task {owner} ({id})");
                }

                claimed[id] = task.Name;
                wanted[task.NetnsPath!] = (task, service);
            }
            catch (FileNotFoundException)
            {
                // The runtime has not created it yet, or already removed it: handled below like any vanished namespace.
                wanted.TryAdd(task.NetnsPath!, (null, null));
            }
            catch (Exception e) when (e is ValidationException or IOException or TaskRefusedException)
            {
                failures[task.Name] = e;
            }
        }

        // Every namespace Mesh put rules into runs a resolver (it is started first), and every one it found legs of is
        // remembered until it is gone: those are the ones to watch.
        foreach (var gone in Watched().Where(p => !wanted.ContainsKey(p)).ToList())
        {
            wanted[gone] = (null, null);
        }

        var alive = new List<string>();
        var vanished = new List<string>();
        var converging = new List<(string Path, ServiceTask Task)>();
        foreach (var (path, (task, service)) in wanted)
        {
            if (!File.Exists(path))
            {
                // The runtime has not created it yet, or already removed it with everything in it: but the kernel keeps a
                // deleted namespace while anything holds it, and its legs with it (see TaskLegs), so they go below.
                await resolvers.StopAsync(path).ConfigureAwait(false);
                nft.Forget(new NetworkNamespacePath(path));
                taskRules.Forget(new NetworkNamespacePath(path));
                otherDataplane.Forget(new NetworkNamespacePath(path));
                vanished.Add(path);
                continue;
            }

            if (task is null || service is null)
            {
                // Deregistered but still there: its rules stay until the runtime deletes the namespace, so connections
                // other nodes still send it while they converge are not refused. Its DNS listeners go now: a task
                // that left the cluster has no names to ask about, and its sockets (and the namespace they pin)
                // must not outlive it. Nothing of Mesh's runs for it any more, so the executors forget it too.
                await resolvers.StopAsync(path).ConfigureAwait(false);
                nft.Forget(new NetworkNamespacePath(path));
                taskRules.Forget(new NetworkNamespacePath(path));
                otherDataplane.Forget(new NetworkNamespacePath(path));
                alive.Add(path);
                continue;
            }

            alive.Add(path);
            converging.Add((path, task));
        }

        // The DNS listeners first (on the ports the namespace's rules already point at, so a restarted daemon keeps
        // them), then the plan from the ports they are on, then each namespace converged on its own.
        var dns = new Dictionary<string, DnsPorts>(StringComparer.Ordinal);
        foreach (var (path, task) in converging.ToList())
        {
            var netns = new NetworkNamespacePath(path);
            try
            {
                dns[task.Name] = await NamespaceConvergeException.Wrap(NamespaceConvergeException.Task(task.Name, netns), "DNS listeners", async () =>
                    resolvers.Ensure(task, path, await taskRules.ReadDnsPortsAsync(netns, ct).ConfigureAwait(false)), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (Vanished(e, path))
            {
                LogTaskNamespaceVanished(path, e.Message);
                converging.Remove((path, task));
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                failures[task.Name] = e;
                converging.Remove((path, task));
            }
        }

        var plans = planner.PlanTasks(state, options.Node, dns).ToDictionary(p => p.Task, StringComparer.Ordinal);
        foreach (var (path, task) in converging)
        {
            using var activity = telemetry.StartConverge("task", task.Name, state.Revision);
            try
            {
                var applied = await executor.ChangedObjects(new NetworkNamespacePath(path), plans[task.Name], ct).ConfigureAwait(false);
                if (applied.Count > 0)
                {
                    activity?.SetTag("mesh.changed", true);
                }

                changed.AddRange(applied);
            }
            catch (Exception e) when (Vanished(e, path))
            {
                LogTaskNamespaceVanished(path, e.Message);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                activity?.SetStatus(ActivityStatusCode.Error, ErrorSummary.Of(e));
                failures[task.Name] = e;
            }
        }

        // The legs of every namespace still there are recorded (the ones attached since the last pass too), then the
        // recorded legs of the vanished ones go.
        LearnLegs(alive);
        var legsRemoved = false;
        foreach (var path in vanished)
        {
            legsRemoved |= RemoveLegs(path);
        }

        if (legsRemoved)
        {
            changed.Add("task-legs");
        }

        var reported = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, e) in failures)
        {
            var summary = errors[name] = ErrorSummary.Of(e);
            reported[name] = summary;
            if (!_reported.TryGetValue(name, out var before) || before != summary)
            {
                // The full message (a tool's stderr, truncated) stays in this node's log.
                LogTaskFailed(name, state.Tasks.First(t => t.Name == name).NetnsPath, e.Message);
            }
        }

        foreach (var recovered in _reported.Keys.Where(k => !reported.ContainsKey(k)))
        {
            LogTaskRecovered(recovered);
        }

        _reported = reported;
        _seenAlive = alive;
        return new TaskSyncResult(changed, errors);
    }

    /// <summary>
    /// Completes when a namespace this node serves (a task's, with a resolver or known legs) that the last pass saw, or
    /// that existed when the wait began, no longer does: a runtime deleting a task's namespace changes nothing in the
    /// store, and its legs must not wait for the resync. A namespace deleted while the pass was still running (after it
    /// looked) completes the wait at once; one the pass already saw gone is not watched, so it cannot make the loop
    /// spin. A stat per namespace every <see cref="VanishedPoll"/>; legs attached meanwhile are recorded as the kernel
    /// reports them (see <see cref="TaskLegs"/>).
    /// </summary>
    public async Task NamespaceVanishedAsync(CancellationToken ct)
    {
        var watched = Watched().Where(File.Exists).Union(_seenAlive, StringComparer.Ordinal).ToList();
        while (!watched.Exists(p => !File.Exists(p)))
        {
            await Task.Delay(VanishedPoll, ct).ConfigureAwait(false);
        }
    }

    private IEnumerable<string> Watched() => resolvers.Namespaces.Concat(legs?.Namespaces ?? []).Distinct(StringComparer.Ordinal);

    /// <summary>Records the legs of the task namespaces at <paramref name="paths"/> (see <see cref="TaskLegs.Learn"/>); a failure is logged and tried again next time.</summary>
    private void LearnLegs(IReadOnlyCollection<string> paths)
    {
        try
        {
            legs?.Learn(paths);
        }
        catch (Mesh.Ipvs.Netlink.NetlinkException e)
        {
            LogLegsUnreadable(string.Join(' ', paths), e.Message);
        }
    }

    private bool RemoveLegs(string path)
    {
        try
        {
            return legs?.Remove(path).Count > 0;
        }
        catch (Mesh.Ipvs.Netlink.NetlinkException e)
        {
            LogLegsUnreadable(path, e.Message);
            return false;
        }
    }

    /// <summary>A kernel error from a namespace that is no longer there: the runtime deleted it meanwhile, not a failure.</summary>
    private static bool Vanished(Exception e, string path) =>
        (e is NamespaceConvergeException { InnerException: { } cause } ? cause : e) is CommandFailedException or Mesh.Ipvs.Netlink.NetlinkException or IOException
        && !File.Exists(path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} (netns {Netns}) not converged (the other tasks were not held up): {Reason}")]
    private partial void LogTaskFailed(string task, string? netns, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The host's network namespace cannot be read ({Reason}): tasks are kept out of the daemon's own namespace, which stands for it")]
    private partial void LogHostUnreadable(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} converges again")]
    private partial void LogTaskRecovered(string task);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The legs of task namespace {Path} could not be read or removed (tried again next pass): {Reason}")]
    private partial void LogLegsUnreadable(string path, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task namespace {Path} vanished while syncing: {Reason}")]
    private partial void LogTaskNamespaceVanished(string path, string reason);
}
