using Mesh.Discovery.Model;

namespace Mesh.Ingress.HealthChecks;

/// <summary>A task's health as one node sees it.</summary>
public enum HealthStatus
{
    /// <summary>Not probed to a verdict yet: kept as a backend (a new task is not held back by its first probes).</summary>
    Unknown,
    Healthy,
    Unhealthy,
}

/// <summary>
/// The thresholds as a state machine, one per probed task: <see cref="HealthCheck.UnhealthyThreshold"/> failed probes
/// in a row make a task unhealthy (from unknown or healthy), <see cref="HealthCheck.HealthyThreshold"/> good ones in a
/// row make an unhealthy task healthy again; an unknown task is healthy at its first good probe. Not thread-safe: one
/// probe loop owns it.
/// </summary>
public sealed class HealthTracker
{
    private int _failures;
    private int _successes;

    public HealthStatus Status { get; private set; } = HealthStatus.Unknown;

    /// <summary>Records one probe; returns true when <see cref="Status"/> changed.</summary>
    public bool Record(bool ok, HealthCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        var before = Status;
        if (ok)
        {
            _failures = 0;
            _successes = Math.Min(_successes + 1, HealthCheck.MaxThreshold);
            if (Status == HealthStatus.Unknown || (Status == HealthStatus.Unhealthy && _successes >= check.HealthyThreshold))
            {
                Status = HealthStatus.Healthy;
            }
        }
        else
        {
            _successes = 0;
            _failures = Math.Min(_failures + 1, HealthCheck.MaxThreshold);
            if (Status != HealthStatus.Unhealthy && _failures >= check.UnhealthyThreshold)
            {
                Status = HealthStatus.Unhealthy;
            }
        }

        return Status != before;
    }
}
