using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon.Systemd;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Health;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Planning;
using Mesh.Ingress.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// The sync loops: watch the store, plan (<see cref="NodePlanner"/>: per namespace what it should hold, touching no
/// kernel object), then converge each namespace to its part of the plan (<see cref="INamespaceExecutor{TDesired}"/>:
/// diff against the kernel, apply only what differs), a failing namespace holding up no other. Two loops, one for the
/// node's own objects (overlays, sandbox links, host and sandbox rules) and one for the local tasks' namespaces (their
/// rules, VIP tables, DNS and egress legs), each running on start (so a restarted daemon converges without duplicating
/// anything), on every store change (coalesced), and every <see cref="DaemonOptions.ResyncInterval"/> to repair drift.
/// </summary>
public sealed partial class NodeReconciler(
    IClusterStore store,
    IDataplane dataplane,
    NodePlanner planner,
    SandboxExecutor sandboxRules,
    IngressSandbox sandbox,
    OverlayNetworks overlays,
    Egress.TaskEgress egress,
    HostRulesWriter hostRules,
    TaskNamespaceSync tasks,
    DaemonOptions options,
    NodeStatus status,
    MeshTelemetry telemetry,
    SyncLoopLiveness liveness,
    LocalTaskCounts localTasks,
    ILogger<NodeReconciler> logger,
    HealthChecks.TaskHealthMonitor? health = null,
    Telemetry.L4.L4BackendMetrics? l4Backends = null) : BackgroundService
{
    private static readonly TimeSpan TaskRetryFirst = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);

    /// <summary>A node pass slower than this is logged with its stages: a change should reach every node's kernel
    /// within 250 ms (issue 13's convergence goal), and the log says which stage held it up.</summary>
    private static readonly TimeSpan SlowPass = TimeSpan.FromMilliseconds(250);

    /// <summary>When the sandbox's links were last verified, and for which address: checking them costs a few
    /// process starts, so it happens on start, on a change of address, after an error and at each resync.</summary>
    private (string Address, long At)? _sandboxVerified;

    private readonly NodeRegistration _registration = new(store, options, status, logger);

    /// <summary>What each loop last converged, and its error: the node's status reports the older of the two.</summary>
    private readonly Lock _progressGate = new();
    private long _nodeApplied = -1;
    private long _tasksApplied = -1;
    private string? _nodeError;
    private string? _tasksError;

    /// <summary>The overlays are converged by the node loop and their removals finished by whichever loop is last.</summary>
    private readonly SemaphoreSlim _overlayGate = new(1, 1);

    /// <summary>The last node pass's stage times, ms: plan, overlay gate wait, overlay, sandbox links (before the rules, or
    /// their periodic check after them), host rules, sandbox.</summary>
    private readonly double[] _stageMs = new double[6];

    /// <summary>The last task pass's egress stage, ms.</summary>
    private double _egressMs;

    /// <summary>The revision whose overlay removals wait until both loops have applied it (-1: none waiting).</summary>
    private long _overlayRemovalsAt = -1;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var node = await RegisterAsync(stoppingToken).ConfigureAwait(false);

        // The local tasks' namespaces converge on a loop of their own. Each task costs processes (its rules, its VIP
        // table) and one change can touch every task on the node; on one loop, a published port's next change waited
        // for all of that (a removed task stayed a backend for 1.5-4 s on etcd, BENCHMARKS.md "convergence"). Apart,
        // the sandbox follows the store as fast as its own transaction allows, and the tasks as fast as theirs.
        var taskLoop = Task.Run(() => TaskLoopAsync(stoppingToken), CancellationToken.None);
        try
        {
            await NodeLoopAsync(node, stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                await taskLoop.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // stopping
            }
        }
    }

    /// <summary>The node's own objects: the sandbox's links, the host's rules, the sandbox's rules.</summary>
    private Task NodeLoopAsync(ClusterNode node, CancellationToken stoppingToken)
    {
        // A health verdict that moves a task in or out of the backends wakes this loop, which then plans again from
        // the state it last read: the store has not changed, and re-reading it would cost an etcd round trip per flap.
        ClusterState? last = null;
        var healthOnly = false;
        return LoopAsync(
            "node",
            async ct =>
            {
                // The version is read before the plan, so a verdict that lands during the pass wakes the next one.
                _healthSeen = health?.Version ?? 0;
                var passStarted = Stopwatch.GetTimestamp();
                var state = healthOnly && last is not null ? last : await store.GetStateAsync((last?.Revision ?? -1) + 1, ct).ConfigureAwait(false);
                last = state;
                var readMs = Stopwatch.GetElapsedTime(passStarted).TotalMilliseconds;
                node = state.Nodes.FirstOrDefault(n => n.Name == node.Name) ?? await RegisterAsync(ct).ConfigureAwait(false);
                await SyncAsync(state, node, ct).ConfigureAwait(false);
                var passMs = Stopwatch.GetElapsedTime(passStarted).TotalMilliseconds;
                if (passMs >= SlowPass.TotalMilliseconds)
                {
                    LogSlowPass(state.Revision, passMs, readMs, _stageMs[0], _stageMs[1], _stageMs[2], _stageMs[3], _stageMs[4], _stageMs[5]);
                }
                else
                {
                    LogNodePass(state.Revision, passMs, readMs, _stageMs[0], _stageMs[1], _stageMs[2], _stageMs[3], _stageMs[4], _stageMs[5]);
                }

                localTasks.Update(state, node.Name);
                l4Backends?.Update(state);
                var bothConverged = Progress(node: (state.Revision, null));
                await FinishOverlayRemovalsAsync(ct).ConfigureAwait(false);
                liveness.PassEnded(converged: bothConverged);
                telemetry.Syncs.Add(1, new KeyValuePair<string, object?>("result", healthOnly ? "health" : "ok"));
                return async () => healthOnly = await WaitForChangeOrHealthAsync(state.Revision, ct).ConfigureAwait(false);
            },
            error =>
            {
                Progress(node: (null, error));
                _sandboxVerified = null;
                healthOnly = false;
            },
            stoppingToken);
    }

    /// <summary>The health version the node loop last planned with.</summary>
    private long _healthSeen;

    /// <summary>
    /// Waits for a store change, the resync, or a health verdict that changes this node's backends; returns true for
    /// the last (the next pass reuses the state it has).
    /// </summary>
    private async Task<bool> WaitForChangeOrHealthAsync(long revision, CancellationToken stoppingToken)
    {
        try
        {
            var healthFirst = await HealthChecks.StoreOrHealthChange.WaitAsync(store, revision, options.ResyncInterval, health, _healthSeen, stoppingToken).ConfigureAwait(false);
            if (healthFirst)
            {
                LogHealthPass(health!.Version);
            }

            return healthFirst;
        }
        catch (StoreUnavailableException e)
        {
            LogStoreUnavailable(e.Message);
            await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
            return false;
        }
    }

    /// <summary>
    /// The local tasks' namespaces (<see cref="TaskNamespaceSync"/>). A failing task is that task's alone; failing
    /// tasks are retried sooner than the resync (a namespace still being set up), backing off so that a task refused
    /// for good costs little.
    /// </summary>
    private Task TaskLoopAsync(CancellationToken stoppingToken)
    {
        var taskRetry = TaskRetryFirst;
        long revision = -1;
        return LoopAsync(
            "task",
            async ct =>
            {
                var passStarted = Stopwatch.GetTimestamp();
                var state = await store.GetStateAsync(revision + 1, ct).ConfigureAwait(false);
                revision = state.Revision;
                var readMs = Stopwatch.GetElapsedTime(passStarted).TotalMilliseconds;
                var failedTasks = await SyncTasksAsync(state, ct).ConfigureAwait(false);
                var passMs = Stopwatch.GetElapsedTime(passStarted).TotalMilliseconds;
                if (passMs >= SlowPass.TotalMilliseconds)
                {
                    LogSlowTaskPass(state.Revision, passMs, readMs, _egressMs);
                }
                else
                {
                    LogTaskPass(state.Revision, passMs, readMs, _egressMs);
                }
                var bothConverged = Progress(tasks: (state.Revision, ErrorSummary.OfTasks(failedTasks)));
                await FinishOverlayRemovalsAsync(ct).ConfigureAwait(false);
                liveness.PassEnded(converged: bothConverged);
                telemetry.Syncs.Add(1, new KeyValuePair<string, object?>("result", failedTasks.Count == 0 ? "tasks-ok" : "tasks-failed"));
                var wait = options.ResyncInterval;
                if (failedTasks.Count > 0)
                {
                    wait = taskRetry < wait ? taskRetry : wait;
                    taskRetry = TimeSpan.FromTicks(Math.Min(taskRetry.Ticks * 2, options.ResyncInterval.Ticks));
                }
                else
                {
                    taskRetry = TaskRetryFirst;
                }

                return () => WaitForChangeOrVanishedAsync(state.Revision, wait, ct);
            },
            error => Progress(tasks: (null, error)),
            stoppingToken);
    }

    /// <summary>
    /// What both loops share: a pass, then its wait for the next reason to pass again. A failing pass leaves the kernel
    /// as it is (never flushed on error), is recorded (<paramref name="failed"/> gets a bounded summary: a tool's output
    /// can echo file contents, nft's include) and retried after a backoff from 200 ms doubling to 10 s.
    /// </summary>
    private async Task LoopAsync(string loop, Func<CancellationToken, Task<Func<Task>>> pass, Action<string> failed, CancellationToken stoppingToken)
    {
        var backoff = FirstBackoff;
        while (!stoppingToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            liveness.PassStarted();
            Func<Task> next;
            try
            {
                next = await pass(stoppingToken).ConfigureAwait(false);
                backoff = FirstBackoff;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                failed(ErrorSummary.Of(e));
                liveness.PassEnded(converged: false);
                telemetry.Syncs.Add(1, new KeyValuePair<string, object?>("result", "error"));
                LogSyncFailed(e, backoff.TotalMilliseconds);
                var delay = backoff;
                next = () => Task.Delay(delay, stoppingToken);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, MaxBackoff.TotalMilliseconds));
            }
            finally
            {
                telemetry.SyncDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }

            var waitStarted = Stopwatch.GetTimestamp();
            await next().ConfigureAwait(false);
            var waitedMs = Stopwatch.GetElapsedTime(waitStarted).TotalMilliseconds;

            // Rate-limited, not delayed: a change after a quiet spell is applied at once, while a burst of changes
            // (each pass reads the latest state, so they coalesce) starts passes at most every MinSyncInterval.
            var sinceStart = Stopwatch.GetElapsedTime(started);
            var heldMs = 0.0;
            if (sinceStart < options.MinSyncInterval)
            {
                heldMs = (options.MinSyncInterval - sinceStart).TotalMilliseconds;
                await Task.Delay(options.MinSyncInterval - sinceStart, stoppingToken).ConfigureAwait(false);
            }

            LogWoke(loop, waitedMs, heldMs);
        }
    }

    /// <summary>The task loop's wait: a store change, or a task namespace deleted by its runtime (which the store does not see).</summary>
    private async Task WaitForChangeOrVanishedAsync(long revision, TimeSpan wait, CancellationToken stoppingToken)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var change = WaitForChangeAsync(revision, wait, either.Token);
        var vanished = tasks.NamespaceVanishedAsync(either.Token);
        var first = await Task.WhenAny(change, vanished).ConfigureAwait(false);
        await either.CancelAsync().ConfigureAwait(false);

        // Not waited for: a store watch need not end at once when cancelled (it may run to its timeout), which would hold
        // the pass back. Its outcome is observed so a failure is not left unobserved.
        var other = first == change ? vanished : change;
        _ = other.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        await first.ConfigureAwait(false);
    }

    private async Task WaitForChangeAsync(long revision, TimeSpan wait, CancellationToken stoppingToken)
    {
        try
        {
            await store.WatchAsync(revision, wait, stoppingToken).ConfigureAwait(false);
        }
        catch (StoreUnavailableException e)
        {
            LogStoreUnavailable(e.Message);
            await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// What left the overlays (a removed task's FDB and neighbour entries, a network this node no longer carries) is
    /// removed only once both loops applied the revision that dropped it: until then a sandbox or a task's VIP table may
    /// still send it new connections, which would hang instead of going elsewhere.
    /// </summary>
    private async Task FinishOverlayRemovalsAsync(CancellationToken ct)
    {
        long node, tasks;
        lock (_progressGate)
        {
            (node, tasks) = (_nodeApplied, _tasksApplied);
        }

        await _overlayGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_overlayRemovalsAt >= 0 && node >= _overlayRemovalsAt && tasks >= _overlayRemovalsAt)
            {
                await overlays.FinishAsync(ct).ConfigureAwait(false);
                _overlayRemovalsAt = -1;
            }
        }
        finally
        {
            _overlayGate.Release();
        }
    }

    /// <summary>
    /// Records one loop's pass (a revision it converged, or null after a failure, and its error) and publishes the
    /// node's status: the revision both loops have applied, and the first error. Returns whether both loops have
    /// converged at least once (the daemon is ready).
    /// </summary>
    private bool Progress((long? Revision, string? Error)? node = null, (long? Revision, string? Error)? tasks = null)
    {
        lock (_progressGate)
        {
            if (node is { } n)
            {
                _nodeApplied = n.Revision ?? _nodeApplied;
                _nodeError = n.Error;
            }

            if (tasks is { } t)
            {
                _tasksApplied = t.Revision ?? _tasksApplied;
                _tasksError = t.Error;
            }

            var applied = Math.Min(_nodeApplied, _tasksApplied);
            status.Report(applied, _nodeError ?? _tasksError);
            return applied >= 0 && (node?.Revision is not null || tasks?.Revision is not null);
        }
    }

    /// <summary>
    /// One pass over the node's own objects: the plan (<see cref="NodePlanner"/>: the overlays, the host's rules, the
    /// sandbox's links and rules), then each converged to it in the order that keeps traffic flowing: the overlays, the
    /// sandbox's links, the host's rules, the sandbox's rules (the links' periodic re-check after the rules); one span each. Each stage is attempted even when an
    /// earlier one failed (a host whose iptables refuses a rule still gets its sandbox's backends updated, and the other
    /// way round); the pass then fails naming every namespace and object that did not converge. What left the overlays
    /// goes after both loops applied the change (<see cref="FinishOverlayRemovalsAsync"/>).
    /// </summary>
    private async Task SyncAsync(ClusterState state, ClusterNode node, CancellationToken ct)
    {
        using var activity = telemetry.Activities.StartActivity(MeshTelemetry.ReconcileSpan);
        activity?.SetTag(MeshTelemetry.RevisionAttribute, state.Revision);
        var failed = new List<NamespaceConvergeException>();
        var inSandbox = NamespaceConvergeException.Sandbox(sandbox.Netns);
        var t = Stopwatch.GetTimestamp();

        // The plan touches no kernel object: a failure there is a bug, and fails the pass as a whole.
        var verdicts = health?.Snapshot;
        var overlayPlan = planner.PlanOverlay(state, node);
        var hostPlan = planner.PlanHost(state, node.Name, verdicts);
        var sandboxPlan = planner.PlanSandbox(state, node, verdicts);
        _stageMs[0] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        t = Stopwatch.GetTimestamp();
        await _overlayGate.WaitAsync(ct).ConfigureAwait(false);
        _stageMs[1] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        t = Stopwatch.GetTimestamp();
        try
        {
            // First: the ingress sandbox and the tasks attach to the overlays' bridges.
            var self = NetworkNamespacePath.Current;
            await IsolatedAsync(failed, "overlay", NamespaceConvergeException.Host(self), "overlays", state.Revision, async () =>
            {
                var overlay = await overlays.ChangesAsync(self, overlayPlan, ct).ConfigureAwait(false);
                _overlayRemovalsAt = state.Revision;
                if (overlay.Changes > 0)
                {
                    Changed("overlay", state.Revision);
                }

                if (overlay.Links)
                {
                    _sandboxVerified = null;
                }
            }, ct).ConfigureAwait(false);
        }
        finally
        {
            _overlayGate.Release();
        }

        _stageMs[2] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        t = Stopwatch.GetTimestamp();

        // The sandbox's links before its rules when the rules need them, their periodic re-check after (SandboxLinksCheck).
        var linksCheck = SandboxLinksSchedule.Decide(
            _sandboxVerified is { } verified ? (verified.Address, Stopwatch.GetElapsedTime(verified.At)) : null,
            sandboxPlan.IngressAddress,
            sandbox.Netns.Path is not { } sandboxPath || File.Exists(sandboxPath),
            options.ResyncInterval);
        Task VerifyLinksAsync()
        {
            _sandboxVerified = null;
            return IsolatedAsync(failed, "links", inSandbox, "links", state.Revision, async () =>
            {
                await sandbox.EnsureAsync(sandboxPlan.IngressAddress, ct).ConfigureAwait(false);
                _sandboxVerified = (sandboxPlan.IngressAddress, Stopwatch.GetTimestamp());
            }, ct);
        }

        if (linksCheck == SandboxLinksCheck.BeforeRules)
        {
            await VerifyLinksAsync().ConfigureAwait(false);
        }

        _stageMs[3] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        t = Stopwatch.GetTimestamp();
        await IsolatedAsync(failed, "host", NamespaceConvergeException.Host(hostPlan.Netns), "host rules", state.Revision, async () =>
        {
            if (await hostRules.ConvergeAsync(hostPlan.Netns, hostPlan, ct).ConfigureAwait(false))
            {
                Changed("host", state.Revision);
            }
        }, ct).ConfigureAwait(false);

        _stageMs[4] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        t = Stopwatch.GetTimestamp();
        await IsolatedAsync(failed, "sandbox", inSandbox, "sandbox rules", state.Revision, async () =>
        {
            foreach (var what in await sandboxRules.ChangedObjects(sandboxPlan.Netns, sandboxPlan, ct).ConfigureAwait(false))
            {
                Changed(what, state.Revision);
            }
        }, ct).ConfigureAwait(false);
        _stageMs[5] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        if (linksCheck == SandboxLinksCheck.AfterRules)
        {
            t = Stopwatch.GetTimestamp();
            await VerifyLinksAsync().ConfigureAwait(false);
            _stageMs[3] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }

        if (failed.Count > 0)
        {
            // The status shows a bounded first line: every namespace and object first, then the first cause (all in the log).
            var error = failed.Count == 1 ? (Exception)failed[0]
                : new AggregateException(
                    $"{failed.Count} of the node's objects did not converge: {string.Join(", ", failed.Select(f => $"{f.Namespace} {f.Object}"))}; first: {ErrorSummary.Of(failed[0].InnerException!)}",
                    failed);
            activity?.SetStatus(ActivityStatusCode.Error, ErrorSummary.Of(error));
            throw error;
        }
    }

    /// <summary>
    /// One stage of the node pass in its own span; a failure is recorded in <paramref name="failed"/> (naming
    /// <paramref name="where"/> and <paramref name="what"/>) instead of stopping the stages after it.
    /// </summary>
    private async Task IsolatedAsync(List<NamespaceConvergeException> failed, string span, string where, string what, long revision, Func<Task> stage, CancellationToken ct)
    {
        using var converge = telemetry.StartConverge(span, null, revision);
        try
        {
            await NamespaceConvergeException.Wrap(where, what, async () =>
            {
                await stage().ConfigureAwait(false);
                return true;
            }, ct).ConfigureAwait(false);
        }
        catch (NamespaceConvergeException e)
        {
            converge?.SetStatus(ActivityStatusCode.Error, ErrorSummary.Of(e));
            failed.Add(e);
        }
    }

    /// <summary>One pass over the local tasks' namespaces; returns the tasks that did not converge (the rest did).</summary>
    private async Task<IReadOnlyDictionary<string, string>> SyncTasksAsync(ClusterState state, CancellationToken ct)
    {
        using var activity = telemetry.Activities.StartActivity(MeshTelemetry.ReconcileTasksSpan);
        activity?.SetTag(MeshTelemetry.RevisionAttribute, state.Revision);
        var result = await tasks.SyncAsync(state, ct).ConfigureAwait(false);
        foreach (var what in result.Changed)
        {
            Changed(what, state.Revision);
        }

        // A new task's egress leg is a few link changes in its namespace (0.1-0.6 s on a loaded machine): on the node
        // loop, after the sandbox, it held up the next published-port change, so a task removed soon after it was
        // added stayed a backend of its own node's sandbox that much longer (BENCHMARKS.md "convergence").
        var egressStarted = Stopwatch.GetTimestamp();
        using (telemetry.StartConverge("egress", null, state.Revision))
        {
            if (await egress.ConvergeAsync(state, ct).ConfigureAwait(false) > 0)
            {
                Changed("egress", state.Revision);
            }
        }

        _egressMs = Stopwatch.GetElapsedTime(egressStarted).TotalMilliseconds;

        activity?.SetTag("mesh.tasks_failed", result.Errors.Count);
        return result.Errors;
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
}
