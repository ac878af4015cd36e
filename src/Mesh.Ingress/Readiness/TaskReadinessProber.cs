using System.Diagnostics;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.HealthChecks;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Readiness;

/// <summary>
/// Makes this node's starting tasks routable once they can take a connection. mesh-cni registers a container at CNI
/// ADD, before its process starts, as <see cref="TaskState.Starting"/>: every node leaves it out of its backends (L4
/// maps, ipvs, the L7 entry, the PROXY relay) and DNS answers, all of which route to running tasks only. Only the
/// task's own node probes it, with a TCP connect to its ingress address on the service's lowest TCP target (the port
/// the health checks probe) from the ingress sandbox, the path the node's own traffic takes; the first accepted
/// connect makes it running in the store, and every node routes to it when it applies that revision. Readiness is
/// one fact about the container, so one node decides it and the store carries it (unlike health verdicts, each
/// node's own view). A task whose port does not answer within <see cref="TaskReadinessOptions.StartTimeout"/> is
/// made failed: visible in <c>mesh task ls</c> and the log, never routed, until the runtime removes it.
/// </summary>
public sealed partial class TaskReadinessProber(
    IClusterStore store, IngressSandbox sandbox, DaemonOptions options, TaskReadinessOptions readiness, ILogger<TaskReadinessProber> logger)
    : TaskLoops<TaskReadinessProber.Target>(store, "readiness probes", Retry, logger)
{
    private static readonly TimeSpan Retry = TimeSpan.FromSeconds(1);

    /// <summary>A starting task of this node and where it should answer; <see cref="Port"/> null when its service has no TCP target.</summary>
    public sealed record Target(string Task, string Service, string? Address, int? Port);

    /// <summary>The starting tasks on <paramref name="node"/>, with the port each must open.</summary>
    public static IReadOnlyList<Target> Targets(ClusterState state, string node)
    {
        ArgumentNullException.ThrowIfNull(state);
        var services = state.Services.ToDictionary(s => s.Name, StringComparer.OrdinalIgnoreCase);
        return state.Tasks
            .Where(t => t.Node == node && t.State == TaskState.Starting && services.ContainsKey(t.Service))
            .Select(t =>
            {
                var service = services[t.Service];
                var address = t.Addresses.GetValueOrDefault(OverlayNetwork.IngressName);
                var port = address is null ? null : HealthCheck.ProbePort(service.Ports, service.Routes);
                return new Target(t.Name, service.Name, port is null ? null : address, port);
            })
            .OrderBy(t => t.Task, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>A loop ends once it reported; a task still starting after that (its report was lost) gets a new one.</summary>
    protected override IEnumerable<(string Task, Target Target)> Follow(ClusterState state) => Targets(state, options.Node).Select(t => (t.Task, t));

    /// <summary>Connects every interval until the port accepts (running) or the start timeout passes (failed), then reports it.</summary>
    protected override async Task RunAsync(Target target, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        if (target.Port is not { } port || target.Address is null)
        {
            // Nothing to probe (the store makes such tasks running at once; this is one stored before that rule).
            await ReportAsync(target, TaskState.Running, clock.Elapsed, null, ct).ConfigureAwait(false);
            return;
        }

        LogWaiting(target.Task, target.Service, target.Address, port, readiness.StartTimeout.TotalSeconds);
        var probe = new HealthProbe(sandbox.Netns.Path!);
        var address = IPAddress.Parse(target.Address);
        var check = new HealthCheck { Kind = HealthCheckKind.Tcp, TimeoutMs = (int)readiness.ConnectTimeout.TotalMilliseconds };
        string? error = "not probed yet";
        while (clock.Elapsed < readiness.StartTimeout)
        {
            try
            {
                error = await probe.RunAsync(address, port, check, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Not the task's failure (the sandbox is not there yet, a thread could not enter it): try again.
                LogProbeNotRun(e, target.Task);
                error = e.Message;
            }

            if (error is null)
            {
                await ReportAsync(target, TaskState.Running, clock.Elapsed, null, ct).ConfigureAwait(false);
                return;
            }

            await Task.Delay(readiness.Interval, ct).ConfigureAwait(false);
        }

        await ReportAsync(target, TaskState.Failed, clock.Elapsed, error, ct).ConfigureAwait(false);
    }

    /// <summary>Writes the outcome to the store, again until it takes (the store may be away); a task gone or moved on meanwhile ends it.</summary>
    private async Task ReportAsync(Target target, TaskState state, TimeSpan after, string? error, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                await Store.UpdateTaskAsync(target.Task, new TaskUpdate { State = state }, ct).ConfigureAwait(false);
                if (state == TaskState.Running)
                {
                    LogRunning(target.Task, target.Service, target.Port, after.TotalMilliseconds);
                }
                else
                {
                    LogFailed(target.Task, target.Service, target.Address, target.Port, after.TotalSeconds, error);
                }

                return;
            }
            catch (Exception e) when (e is NotFoundException or ConflictException)
            {
                return; // removed, or no longer starting: nothing left to report
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                LogReportFailed(e, target.Task, StateTransitions.StateName(state), Retry.TotalSeconds);
                await Task.Delay(Retry, ct).ConfigureAwait(false);
            }
        }
    }
}
