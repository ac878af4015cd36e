using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon.Systemd;

public sealed partial class SystemdNotifications
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Told systemd READY=1: node {Node} converged at revision {Revision}")]
    private partial void LogReady(string node, long revision);

    [LoggerMessage(Level = LogLevel.Information, Message = "systemd watchdog every {TimeoutSeconds} s: pinging at half that while the sync loop shows life within {StallLimitSeconds} s")]
    private partial void LogWatchdog(double timeoutSeconds, double stallLimitSeconds);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Sync loop silent for {Seconds:F0} s: watchdog pings stopped, systemd will restart the daemon")]
    private partial void LogStalled(double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not notify systemd: {Reason}")]
    private partial void LogNotifyFailed(string reason);
}
