using Mesh.Discovery.Model;
using Mesh.Ingress.HealthChecks;

namespace Mesh.Ingress.Tests.HealthChecks;

public sealed class HealthTrackerTests
{
    private static readonly HealthCheck Check = new() { Path = "/healthz", HealthyThreshold = 3, UnhealthyThreshold = 2 };

    private static List<HealthStatus> Run(params bool[] probes)
    {
        var tracker = new HealthTracker();
        return probes.Select(ok =>
        {
            tracker.Record(ok, Check);
            return tracker.Status;
        }).ToList();
    }

    [Fact]
    public void A_new_task_is_unknown_until_its_first_good_probe_makes_it_healthy()
    {
        Assert.Equal(HealthStatus.Unknown, new HealthTracker().Status);
        Assert.Equal([HealthStatus.Healthy], Run(true));
    }

    [Fact]
    public void It_takes_the_unhealthy_threshold_of_failures_in_a_row_to_go_unhealthy()
    {
        Assert.Equal([HealthStatus.Healthy, HealthStatus.Healthy, HealthStatus.Unhealthy], Run(true, false, false));

        // A good probe between two failures starts the count again.
        Assert.Equal([HealthStatus.Healthy, HealthStatus.Healthy, HealthStatus.Healthy, HealthStatus.Healthy, HealthStatus.Unhealthy], Run(true, false, true, false, false));

        // From unknown too: a task that never answers goes out.
        Assert.Equal([HealthStatus.Unknown, HealthStatus.Unhealthy], Run(false, false));
    }

    [Fact]
    public void It_takes_the_healthy_threshold_of_good_probes_in_a_row_to_come_back()
    {
        var statuses = Run(false, false, true, true, false, true, true, true);
        Assert.Equal(
            [HealthStatus.Unknown, HealthStatus.Unhealthy, HealthStatus.Unhealthy, HealthStatus.Unhealthy, HealthStatus.Unhealthy, HealthStatus.Unhealthy, HealthStatus.Unhealthy, HealthStatus.Healthy],
            statuses);
    }

    [Fact]
    public void Record_says_when_the_status_changed()
    {
        var tracker = new HealthTracker();
        Assert.True(tracker.Record(true, Check));
        Assert.False(tracker.Record(true, Check));
        Assert.False(tracker.Record(false, Check));
        Assert.True(tracker.Record(false, Check));
        Assert.False(tracker.Record(false, Check));
    }
}
