using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

/// <summary>
/// Runs this node's health checks: one probe loop per running task of every service with a check (every task in the
/// cluster, not only this node's: each node decides its own backends), started and stopped as the store changes, each
/// reporting to <see cref="TaskHealthMonitor"/>. Probes go out from the ingress sandbox (<see cref="HealthProbe"/>).
/// </summary>
public sealed partial class HealthProber(IClusterStore store, IngressSandbox sandbox, TaskHealthMonitor monitor, ILogger<HealthProber> logger)
    : TaskLoops<HealthProber.Target>(store, "health checks", TimeSpan.FromSeconds(2), logger)
{
    /// <summary>What one loop probes; a task whose target changes (address, port, check) gets a new loop and a fresh verdict.</summary>
    public sealed record Target(string Task, string Service, string Address, int Port, HealthCheck Check);

    /// <summary>Every running task with an ingress address of every service with a health check.</summary>
    public static IReadOnlyList<Target> Targets(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var targets = new List<Target>();
        var tasks = BackendSet.RunningTasksByService(state);
        foreach (var service in state.Services)
        {
            if (service.HealthCheck is not { } check || HealthCheck.ProbePort(service.Ports, service.Routes) is not { } port)
            {
                continue;
            }

            foreach (var task in tasks[service.Name])
            {
                if (task.Addresses.TryGetValue(OverlayNetwork.IngressName, out var address))
                {
                    targets.Add(new Target(task.Name, service.Name, address, port, check));
                }
            }
        }

        return targets;
    }

    protected override IEnumerable<(string Task, Target Target)> Follow(ClusterState state) => Targets(state).Select(t => (t.Task, t));

    /// <summary>A new verdict starts from nothing: the old one is forgotten with its loop.</summary>
    protected override void Stopped(string task) => monitor.Forget(task);

    /// <summary>Probes every interval (from the start of one probe to the next: a slow answer does not stretch it).</summary>
    protected override async Task RunAsync(Target target, CancellationToken ct)
    {
        LogProbing(target.Task, target.Service, target.Address, target.Port, target.Check.ToString());
        var tracker = new HealthTracker();
        var probe = new HealthProbe(sandbox.Netns.Path!);
        var address = IPAddress.Parse(target.Address);
        var interval = TimeSpan.FromMilliseconds(target.Check.IntervalMs);

        // Loops started together (a daemon's start, a new service) spread over the first interval instead of probing at once.
        await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * Math.Min(target.Check.IntervalMs, 1000)), ct).ConfigureAwait(false);
        using var timer = new PeriodicTimer(interval);
        do
        {
            string? error;
            try
            {
                error = await probe.RunAsync(address, target.Port, target.Check, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Not the task's failure (the sandbox is not there yet, a thread could not enter it): no verdict.
                LogProbeNotRun(e, target.Task);
                continue;
            }

            tracker.Record(error is null, target.Check);
            monitor.Report(target.Task, target.Service, error is null, tracker.Status, error);
        }
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
    }
}
