using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

/// <summary>
/// Runs this node's health checks: one probe loop per running task of every service with a check (every task in the
/// cluster, not only this node's: each node decides its own backends), started and stopped as the store changes, each
/// reporting to <see cref="TaskHealthMonitor"/>. Probes go out from the ingress sandbox (<see cref="HealthProbe"/>).
/// </summary>
public sealed partial class HealthProber(IClusterStore store, IngressSandbox sandbox, TaskHealthMonitor monitor, ILogger<HealthProber> logger) : BackgroundService
{
    private static readonly TimeSpan Retry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan WatchTimeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, Probe> _probes = new(StringComparer.Ordinal);

    /// <summary>What one loop probes; a task whose target changes (address, port, check) gets a new loop and a fresh verdict.</summary>
    public sealed record Target(string Task, string Service, string Address, int Port, HealthCheck Check);

    private sealed record Probe(Target Target, CancellationTokenSource Stop, Task Loop);

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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                long revision;
                try
                {
                    var state = await store.GetStateAsync(stoppingToken).ConfigureAwait(false);
                    revision = state.Revision;
                    Follow(Targets(state), stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    LogStateFailed(e, Retry.TotalSeconds);
                    await Task.Delay(Retry, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                try
                {
                    await store.WatchAsync(revision, WatchTimeout, stoppingToken).ConfigureAwait(false);
                }
                catch (StoreUnavailableException e)
                {
                    LogStoreUnavailable(e.Message);
                    await Task.Delay(Retry, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            foreach (var name in _probes.Keys.ToList())
            {
                await StopAsync(name).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Stops the loops whose target is gone or changed and starts the missing ones.</summary>
    private void Follow(IReadOnlyList<Target> targets, CancellationToken ct)
    {
        var wanted = targets.ToDictionary(t => t.Task, StringComparer.Ordinal);
        foreach (var (name, probe) in _probes.ToList())
        {
            if (!wanted.TryGetValue(name, out var target) || target != probe.Target)
            {
                _ = StopAsync(name);
            }
        }

        foreach (var target in targets.Where(t => !_probes.ContainsKey(t.Task)))
        {
            var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _probes[target.Task] = new Probe(target, stop, Task.Run(() => LoopAsync(target, stop.Token), CancellationToken.None));
            LogProbing(target.Task, target.Service, target.Address, target.Port, target.Check.ToString());
        }
    }

    private async Task StopAsync(string name)
    {
        if (!_probes.Remove(name, out var probe))
        {
            return;
        }

        await probe.Stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await probe.Loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
        finally
        {
            probe.Stop.Dispose();
            monitor.Forget(name);
        }
    }

    /// <summary>Probes every interval (from the start of one probe to the next: a slow answer does not stretch it).</summary>
    private async Task LoopAsync(Target target, CancellationToken ct)
    {
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
