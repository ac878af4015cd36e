namespace Mesh.Ingress.Daemon.Systemd;

/// <summary>
/// The sync loop's heartbeat, for systemd: the loop marks each pass it starts and ends; the watchdog pings only
/// while the last mark is recent, and readiness waits for the first pass that succeeded. A loop that died or hangs
/// (a pass that never ends) stops the pings, and systemd restarts the daemon.
/// </summary>
public sealed class SyncLoopLiveness(TimeProvider time)
{
    private readonly TaskCompletionSource _firstSync = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastMark = time.GetTimestamp();

    /// <summary>Completes when a pass has converged the node for the first time.</summary>
    public Task FirstSync => _firstSync.Task;

    /// <summary>A pass begins (reading the store, then converging).</summary>
    public void PassStarted() => Interlocked.Exchange(ref _lastMark, time.GetTimestamp());

    /// <summary>A pass is over, converged or failed (a failing loop that retries is alive; it is not ready).</summary>
    public void PassEnded(bool converged)
    {
        Interlocked.Exchange(ref _lastMark, time.GetTimestamp());
        if (converged)
        {
            _firstSync.TrySetResult();
        }
    }

    /// <summary>How long since the loop last showed a sign of life.</summary>
    public TimeSpan SinceLastMark => time.GetElapsedTime(Interlocked.Read(ref _lastMark));

    /// <summary>
    /// Alive when the last mark is younger than <paramref name="stallLimit"/>: an idle loop marks at least every resync
    /// interval, and a pass's slowest step is a child process killed after the command timeout.
    /// </summary>
    public bool IsAlive(TimeSpan stallLimit) => SinceLastMark < stallLimit;
}
