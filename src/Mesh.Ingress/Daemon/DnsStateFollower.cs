using System.Diagnostics;
using Mesh.Discovery.Store;
using Mesh.Ingress.Resolver;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// Hands every store revision to the embedded resolvers as soon as the watch reports it, on a loop of its own: DNS is
/// answered from memory, so it need not wait for a reconcile pass, which may still be busy with the previous
/// revision's task namespaces (a second or more when processes are slow). Measured: a removed task left DNS in
/// 1.7 s p50 on etcd when the pass carried the update, see BENCHMARKS.md "convergence".
/// </summary>
public sealed partial class DnsStateFollower(IClusterStore store, TaskResolvers resolvers, DaemonOptions options, ILogger<DnsStateFollower> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        long revision = -1;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var started = Stopwatch.GetTimestamp();
                var state = await store.GetStateAsync(revision + 1, stoppingToken).ConfigureAwait(false);
                revision = state.Revision;
                var readMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                resolvers.Update(state);
                LogFollowed(state.Revision, readMs, Stopwatch.GetElapsedTime(started).TotalMilliseconds - readMs);
                backoff = TimeSpan.FromMilliseconds(100);
                await store.WatchAsync(state.Revision, options.ResyncInterval, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The store is away: the resolvers keep answering from the last state (as the dataplane keeps serving).
                LogFollowFailed(e.Message, backoff.TotalMilliseconds);
                await Task.Delay(backoff, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5_000));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "DNS answers from revision {Revision} (store read {ReadMs:0.0} ms, records updated in {UpdateMs:0.0} ms)")]
    private partial void LogFollowed(long revision, double readMs, double updateMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DNS keeps the last known state: reading the store failed ({Reason}); retrying in {RetryMs} ms")]
    private partial void LogFollowFailed(string reason, double retryMs);
}
