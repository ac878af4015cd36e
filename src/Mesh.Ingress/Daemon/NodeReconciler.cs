using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon.Systemd;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Health;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// The sync loop: read the whole desired state, diff it against the kernel object by object, apply
/// only what differs. Runs on start (so a restarted daemon converges without duplicating anything), on
/// every store change (coalesced), and every <see cref="DaemonOptions.ResyncInterval"/> to repair drift.
/// </summary>
public sealed partial class NodeReconciler(
    IClusterStore store,
    IDataplane dataplane,
    DataplaneSwitchCleanup otherDataplane,
    IngressSandbox sandbox,
    IptablesExecutor iptables,
    TaskNamespaceSync tasks,
    TaskResolvers resolvers,
    DaemonOptions options,
    NodeStatus status,
    MeshTelemetry telemetry,
    SyncLoopLiveness liveness,
    LocalTaskCounts localTasks,
    ILogger<NodeReconciler> logger) : BackgroundService
{
    private static readonly TimeSpan TaskRetryFirst = TimeSpan.FromSeconds(1);

    /// <summary>When the sandbox's links were last verified, and for which address: checking them costs a few
    /// process starts, so it happens on start, on a change of address, after an error and at each resync.</summary>
    private (string Address, long At)? _sandboxVerified;

    /// <summary>The task ingress addresses of the last applied state, to tell which came or went.</summary>
    private HashSet<string>? _taskAddresses;

    private readonly NodeRegistration _registration = new(store, options, status, logger);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var node = await RegisterAsync(stoppingToken).ConfigureAwait(false);
        var backoff = TimeSpan.FromMilliseconds(200);
        var taskRetry = TaskRetryFirst;
        while (!stoppingToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            liveness.PassStarted();
            long revision;
            var wait = options.ResyncInterval;
            try
            {
                var state = await store.GetStateAsync(stoppingToken).ConfigureAwait(false);
                node = state.Nodes.FirstOrDefault(n => n.Name == node.Name) ?? await RegisterAsync(stoppingToken).ConfigureAwait(false);
                var failedTasks = await SyncAsync(state, node, stoppingToken).ConfigureAwait(false);
                status.Applied(state.Revision);
                localTasks.Update(state, node.Name);
                status.LastError = ErrorSummary.OfTasks(failedTasks);
                liveness.PassEnded(converged: true); // a failing task is that task's alone: the node itself converged
                revision = state.Revision;
                telemetry.Syncs.Add(1, new KeyValuePair<string, object?>("result", failedTasks.Count == 0 ? "ok" : "tasks-failed"));
                backoff = TimeSpan.FromMilliseconds(200);

                // Failing tasks are retried sooner than the resync (a namespace still being set up), backing off
                // so a task that is refused for good costs little.
                if (failedTasks.Count > 0)
                {
                    wait = taskRetry < wait ? taskRetry : wait;
                    taskRetry = TimeSpan.FromTicks(Math.Min(taskRetry.Ticks * 2, options.ResyncInterval.Ticks));
                }
                else
                {
                    taskRetry = TaskRetryFirst;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // Keep the dataplane as it is (never flush on error) and retry with backoff. What is kept and
                // served is a bounded summary: a tool's output can echo file contents (nft's include).
                status.LastError = ErrorSummary.Of(e);
                liveness.PassEnded(converged: false);
                _sandboxVerified = null;
                telemetry.Syncs.Add(1, new KeyValuePair<string, object?>("result", "error"));
                LogSyncFailed(e, backoff.TotalMilliseconds);
                await Task.Delay(backoff, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 10_000));
                continue;
            }
            finally
            {
                telemetry.SyncDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }

            try
            {
                await store.WatchAsync(revision, wait, stoppingToken).ConfigureAwait(false);
                await Task.Delay(options.MinSyncInterval, stoppingToken).ConfigureAwait(false);
            }
            catch (StoreUnavailableException e)
            {
                LogStoreUnavailable(e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// One pass; returns the tasks that did not converge (the rest of the node did). In the order that keeps traffic
    /// flowing: the sandbox's links, the host's rules, the sandbox's rules, then each task; one span each.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, string>> SyncAsync(ClusterState state, ClusterNode node, CancellationToken ct)
    {
        using var activity = telemetry.Activities.StartActivity(MeshTelemetry.ReconcileSpan);
        activity?.SetTag(MeshTelemetry.RevisionAttribute, state.Revision);
        try
        {
            resolvers.Update(state);
            if (_sandboxVerified is not { } verified || verified.Address != node.IngressSandboxIp
                || Stopwatch.GetElapsedTime(verified.At) >= options.ResyncInterval)
            {
                using var links = telemetry.StartConverge("links", null, state.Revision);
                _sandboxVerified = null;
                await sandbox.EnsureAsync(node.IngressSandboxIp, ct).ConfigureAwait(false);
                _sandboxVerified = (node.IngressSandboxIp, Stopwatch.GetTimestamp());
            }

            using (telemetry.StartConverge("host", null, state.Revision))
            {
                if (await iptables.ApplyAsync(NetworkNamespacePath.Current, HostRules.Build(state, options.Network, node.Name), HostRules.Tables, ct).ConfigureAwait(false))
                {
                    Changed("host", state.Revision);
                }
            }

            await ConvergeSandboxAsync(state, node, ct).ConfigureAwait(false);
            var result = await tasks.SyncAsync(state, ct).ConfigureAwait(false);
            foreach (var what in result.Changed)
            {
                Changed(what, state.Revision);
            }

            activity?.SetTag("mesh.tasks_failed", result.Errors.Count);
            return result.Errors;
        }
        catch (Exception e)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ErrorSummary.Of(e));
            throw;
        }
    }

    /// <summary>The ingress sandbox's rules: the dataplane's, what another dataplane left there, stale neighbours.</summary>
    private async Task ConvergeSandboxAsync(ClusterState state, ClusterNode node, CancellationToken ct)
    {
        using var activity = telemetry.StartConverge("sandbox", null, state.Revision);
        if (await dataplane.ApplyAsync(state, node, ct).ConfigureAwait(false))
        {
            Changed(dataplane.Name, state.Revision);
        }

        if (await otherDataplane.SandboxAsync(ct).ConfigureAwait(false))
        {
            Changed("other-dataplane", state.Revision);
        }

        var addresses = state.Tasks.Select(t => t.Addresses.GetValueOrDefault(OverlayNetwork.IngressName)).OfType<string>().ToHashSet(StringComparer.Ordinal);
        if (_taskAddresses is not null)
        {
            await sandbox.ForgetNeighboursAsync(addresses.Except(_taskAddresses).Concat(_taskAddresses.Except(addresses)), ct).ConfigureAwait(false);
        }

        _taskAddresses = addresses;
    }

    private async Task<ClusterNode> RegisterAsync(CancellationToken ct)
    {
        var node = await _registration.RegisterAsync(ct).ConfigureAwait(false);
        LogRegistered(node.Name, node.AdvertiseAddress, node.IngressSandboxIp, dataplane.Name);
        return node;
    }

    private void Changed(string what, long revision)
    {
        Activity.Current?.SetTag("mesh.changed", true);
        telemetry.KernelChanges.Add(1, new KeyValuePair<string, object?>("object", what));
        LogKernelChanged(what, revision);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} registered (advertise {AdvertiseAddress}, ingress sandbox {SandboxIp}), dataplane {Dataplane}")]
    private partial void LogRegistered(string node, string advertiseAddress, string sandboxIp, string dataplane);

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied {Object} changes for revision {Revision}")]
    private partial void LogKernelChanged(string @object, long revision);

    [LoggerMessage(Level = LogLevel.Error, Message = "Reconcile failed; dataplane left as it was, retrying in {RetryMs} ms")]
    private partial void LogSyncFailed(Exception exception, double retryMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Store unavailable: {Reason}; serving the last known state")]
    private partial void LogStoreUnavailable(string reason);

}
