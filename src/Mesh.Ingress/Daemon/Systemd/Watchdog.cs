using System.Globalization;

namespace Mesh.Ingress.Daemon.Systemd;

/// <summary>
/// systemd's watchdog as the service manager hands it over (<c>WATCHDOG_USEC</c>, <c>WATCHDOG_PID</c>), read as
/// <c>sd_watchdog_enabled()</c> does: enabled only when the timeout is a positive number of microseconds and the pid,
/// if given, is this process (a child that inherited the variables is not the watched one).
/// </summary>
public sealed record Watchdog(TimeSpan Timeout)
{
    /// <summary>Pings go out at half the timeout, as systemd's documentation recommends.</summary>
    public TimeSpan PingInterval => Timeout / 2;

    public static Watchdog? FromEnvironment(Func<string, string?> environment, int processId)
    {
        if (!ulong.TryParse(environment("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) || usec == 0
            || usec > (ulong)TimeSpan.MaxValue.Ticks / 10)
        {
            return null;
        }

        if (environment("WATCHDOG_PID") is { Length: > 0 } pid
            && (!int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out var watched) || watched != processId))
        {
            return null;
        }

        return new Watchdog(TimeSpan.FromMicroseconds(usec));
    }
}
