using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon.Systemd;

/// <summary>
/// Tells systemd (<c>Type=notify</c>) what the node is doing: <c>READY=1</c> once the first sync has converged the
/// node (not when the host starts: a daemon whose dataplane is not programmed yet is not ready), <c>WATCHDOG=1</c>
/// every half <c>WATCHDOG_USEC</c> while the sync loop is alive, <c>STOPPING=1</c> on shutdown, and a <c>STATUS=</c>
/// line (revision, dataplane, last error) that <c>systemctl status mesh</c> shows. Silent without <c>NOTIFY_SOCKET</c>.
/// </summary>
public sealed partial class SystemdNotifications(
    ISystemdNotifier notifier,
    Watchdog? watchdog,
    SyncLoopLiveness liveness,
    NodeStatus status,
    DaemonOptions options,
    IHostApplicationLifetime lifetime,
    ILogger<SystemdNotifications> logger) : BackgroundService
{
    /// <summary>An idle loop marks at least every resync; a pass's slowest step is a child killed at the command timeout.</summary>
    public TimeSpan StallLimit => options.ResyncInterval + options.CommandTimeout + options.MinSyncInterval;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!notifier.IsEnabled)
        {
            return;
        }

        using var stopping = lifetime.ApplicationStopping.Register(() => Notify("STOPPING=1\nSTATUS=Stopping"));
        Notify("STATUS=Starting: waiting for the first sync of node " + status.Node);
        var pings = watchdog is null ? Task.CompletedTask : PingAsync(watchdog, stoppingToken);
        await liveness.FirstSync.WaitAsync(stoppingToken).ConfigureAwait(false);
        Notify("READY=1\nSTATUS=" + Describe());
        LogReady(status.Node, status.AppliedRevision);
        await pings.ConfigureAwait(false);
    }

    private async Task PingAsync(Watchdog dog, CancellationToken ct)
    {
        LogWatchdog(dog.Timeout.TotalSeconds, StallLimit.TotalSeconds);
        using var timer = new PeriodicTimer(dog.PingInterval);
        var stalled = false;
        do
        {
            if (liveness.IsAlive(StallLimit))
            {
                Notify(liveness.FirstSync.IsCompleted ? "WATCHDOG=1\nSTATUS=" + Describe() : "WATCHDOG=1");
                stalled = false;
            }
            else if (!stalled)
            {
                // No ping: systemd kills the daemon when the watchdog expires and Restart= brings it back.
                stalled = true;
                LogStalled(liveness.SinceLastMark.TotalSeconds);
                Notify($"STATUS=Sync loop stalled for {liveness.SinceLastMark.TotalSeconds:F0} s; watchdog pings stopped");
            }
        }
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
    }

    private string Describe()
    {
        var text = $"Node {status.Node}: applied revision {status.AppliedRevision}, dataplane {status.Dataplane}"
            + (status.LastError is { } error ? "; last error: " + error : "");

        // One assignment per line in the protocol: a newline in an error would start a new one.
        return text.ReplaceLineEndings(" ");
    }

    private void Notify(string message)
    {
        try
        {
            notifier.Notify(new ServiceState(message));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ObjectDisposedException)
        {
            LogNotifyFailed(e.Message);
        }
    }
}
