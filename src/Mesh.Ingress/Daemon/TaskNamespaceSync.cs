using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
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
/// the store's order keeps it). A task that is refused or fails is that task's problem alone: it is logged (once per
/// distinct reason) and reported, and the other tasks still converge in the same pass.
/// </summary>
public sealed partial class TaskNamespaceSync(
    IDataplane dataplane,
    DataplaneSwitchCleanup otherDataplane,
    TaskRulesWriter taskRules,
    NfTablesExecutor nft,
    TaskResolvers resolvers,
    TaskNamespaceGuard guard,
    TaskResolvConfWriter resolvConf,
    ClientReplyRoutes replyRoutes,
    DaemonOptions options,
    MeshTelemetry telemetry,
    ILogger<TaskNamespaceSync> logger)
{
    /// <summary>The reason last logged per failing task, so a task refused on every pass is logged once, not every pass.</summary>
    private Dictionary<string, string> _reported = new(StringComparer.Ordinal);

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

        // Every namespace Mesh put rules into runs a resolver (it is started first): those are the ones to watch.
        foreach (var gone in resolvers.Namespaces.Where(p => !wanted.ContainsKey(p)).ToList())
        {
            wanted[gone] = (null, null);
        }

        foreach (var (path, (task, service)) in wanted)
        {
            if (!File.Exists(path))
            {
                // The runtime has not created it yet, or already removed it with everything in it.
                await resolvers.StopAsync(path).ConfigureAwait(false);
                nft.Forget(new NetworkNamespacePath(path));
                taskRules.Forget(new NetworkNamespacePath(path));
                otherDataplane.Forget(new NetworkNamespacePath(path));
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
                continue;
            }

            using var activity = telemetry.StartConverge("task", task.Name, state.Revision);
            try
            {
                var applied = await ConvergeAsync(state, task, service, path, ct).ConfigureAwait(false);
                if (applied.Count > 0)
                {
                    activity?.SetTag("mesh.changed", true);
                }

                changed.AddRange(applied);
            }
            catch (Exception e) when (e is CommandFailedException or Mesh.Ipvs.Netlink.NetlinkException or IOException && !File.Exists(path))
            {
                LogTaskNamespaceVanished(path, e.Message);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                activity?.SetStatus(ActivityStatusCode.Error, ErrorSummary.Of(e));
                failures[task.Name] = e;
            }
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
        return new TaskSyncResult(changed, errors);
    }

    private async Task<List<string>> ConvergeAsync(ClusterState state, ServiceTask task, ClusterService service, string path, CancellationToken ct)
    {
        var changed = new List<string>();
        var netns = new NetworkNamespacePath(path);
        if (await taskRules.ConvergeAsync(task, service, netns, previous => resolvers.Ensure(task, path, previous), ct).ConfigureAwait(false))
        {
            changed.Add("task");
        }

        if (await dataplane.ApplyTaskAsync(state, task, netns, ct).ConfigureAwait(false))
        {
            changed.Add("task-vips");
        }

        if (await otherDataplane.TaskAsync(state, netns, ct).ConfigureAwait(false))
        {
            changed.Add("other-dataplane");
        }

        if (task.ResolvConfPath is not null && resolvConf.Write(task.ResolvConfPath))
        {
            changed.Add("resolv.conf");
        }

        // Last: it fails (and is retried soon) while the runtime has not attached the ingress leg yet.
        if (ClientReplyRoutes.Needed(service) && task.Addresses.TryGetValue(OverlayNetwork.IngressName, out var ingressAddress)
            && state.Nodes.FirstOrDefault(n => n.Name == options.Node) is { } node
            && await replyRoutes.EnsureAsync(netns, ingressAddress, node.IngressSandboxIp, ct).ConfigureAwait(false))
        {
            changed.Add("task-reply-routes");
        }

        return changed;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} (netns {Netns}) not converged (the other tasks were not held up): {Reason}")]
    private partial void LogTaskFailed(string task, string? netns, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The host's network namespace cannot be read ({Reason}): tasks are kept out of the daemon's own namespace, which stands for it")]
    private partial void LogHostUnreadable(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} converges again")]
    private partial void LogTaskRecovered(string task);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task namespace {Path} vanished while syncing: {Reason}")]
    private partial void LogTaskNamespaceVanished(string path, string reason);
}
