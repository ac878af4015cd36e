using Mesh.Discovery.Store;

namespace Mesh.Ingress.HealthChecks;

/// <summary>
/// What wakes a follower of the store that also plans by this node's health verdicts (the node loop, the L7 entry,
/// the PROXY relay): a store change after a revision, the store's timeout, or a verdict that moves a task in or out of
/// the backends, whichever comes first.
/// </summary>
public static class StoreOrHealthChange
{
    /// <summary>
    /// Returns true when a health verdict came first (the caller re-plans from the state it holds), false for the
    /// store (or its timeout). Without health checks (<paramref name="health"/> null) it is the store's wait alone;
    /// the store's failures (<see cref="StoreUnavailableException"/>) are the caller's to handle either way.
    /// </summary>
    public static async Task<bool> WaitAsync(IClusterStore store, long revision, TimeSpan timeout, TaskHealthMonitor? health, long healthSeen, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (health is null)
        {
            await store.WatchAsync(revision, timeout, ct).ConfigureAwait(false);
            return false;
        }

        using var either = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var storeChanged = store.WatchAsync(revision, timeout, either.Token);
        var healthChanged = health.WaitForChangeAsync(healthSeen, either.Token);
        var first = await Task.WhenAny(storeChanged, healthChanged).ConfigureAwait(false);
        await either.CancelAsync().ConfigureAwait(false);
        try
        {
            await (first == storeChanged ? healthChanged : storeChanged).ConfigureAwait(false);
        }
        catch (Exception) when (!ct.IsCancellationRequested)
        {
            // cancelled because the other one came first: whatever it ended with does not matter
        }

        ct.ThrowIfCancellationRequested();
        await first.ConfigureAwait(false); // the winner's failure is the caller's
        return first == healthChanged;
    }
}
