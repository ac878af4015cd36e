using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

/// <summary>
/// A loop per task, following the store: each state read gives the targets; a loop starts for every new target, and
/// stops when its task is gone or its target changed (a loop that ended on its own is started again if its target is
/// still wanted). Between reads it waits for the store's next change. A failed read is retried after
/// <paramref name="retry"/>; while the store is away the loops go on with the last targets. The health checks
/// (<see cref="HealthProber"/>) and the readiness of starting tasks (<see cref="Readiness.TaskReadinessProber"/>) are two.
/// </summary>
public abstract partial class TaskLoops<TTarget>(IClusterStore store, string purpose, TimeSpan retry, ILogger logger) : BackgroundService
    where TTarget : class
{
    private static readonly TimeSpan WatchTimeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, Loop> _loops = new(StringComparer.Ordinal);

    /// <summary>The store followed, for loops that also write to it.</summary>
    protected IClusterStore Store { get; } = store;

    private sealed record Loop(TTarget Target, CancellationTokenSource Stop, Task Running);

    /// <summary>What to run a loop for in this state, each with its task's name (unique).</summary>
    protected abstract IEnumerable<(string Task, TTarget Target)> Follow(ClusterState state);

    /// <summary>One task's loop; ends when <paramref name="ct"/> is cancelled (or when it has nothing left to do).</summary>
    protected abstract Task RunAsync(TTarget target, CancellationToken ct);

    /// <summary>After a task's loop stopped (its task left, its target changed, the daemon stops).</summary>
    protected virtual void Stopped(string task)
    {
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            long revision = -1;
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    // Newer than the one the watch waited past (shared with the daemon's other loops on a joined node).
                    var state = await Store.GetStateAsync(revision + 1, stoppingToken).ConfigureAwait(false);
                    revision = state.Revision;
                    Converge(Follow(state).ToDictionary(t => t.Task, t => t.Target, StringComparer.Ordinal), stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    LogStateFailed(e, purpose, retry.TotalSeconds);
                    await Task.Delay(retry, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                try
                {
                    await Store.WatchAsync(revision, WatchTimeout, stoppingToken).ConfigureAwait(false);
                }
                catch (StoreUnavailableException e)
                {
                    LogStoreUnavailable(purpose, e.Message);
                    await Task.Delay(retry, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            foreach (var task in _loops.Keys.ToList())
            {
                await StopAsync(task).ConfigureAwait(false);
            }
        }
    }

    private void Converge(Dictionary<string, TTarget> wanted, CancellationToken ct)
    {
        foreach (var (task, loop) in _loops.ToList())
        {
            if (!wanted.TryGetValue(task, out var target) || !target.Equals(loop.Target) || loop.Running.IsCompleted)
            {
                _ = StopAsync(task);
            }
        }

        foreach (var (task, target) in wanted.Where(w => !_loops.ContainsKey(w.Key)))
        {
            var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _loops[task] = new Loop(target, stop, Task.Run(() => RunAsync(target, stop.Token), CancellationToken.None));
        }
    }

    private async Task StopAsync(string task)
    {
        if (!_loops.Remove(task, out var loop))
        {
            return;
        }

        await loop.Stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await loop.Running.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
        finally
        {
            loop.Stop.Dispose();
            Stopped(task);
        }
    }
}
