using System.Diagnostics.Metrics;
using Mesh.Ingress.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.HealthChecks;

public sealed class TaskHealthMonitorTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    private TaskHealthMonitor Monitor() => new("n1", _services.GetRequiredService<IMeterFactory>(), NullLogger<TaskHealthMonitor>.Instance);

    public void Dispose() => _services.Dispose();

    /// <summary>The observable gauges of this test's meter factory: (instrument, task or service, value).</summary>
    private List<(string Instrument, string Subject, int Value)> Observe()
    {
        var factory = _services.GetRequiredService<IMeterFactory>();
        var measured = new List<(string, string, int)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Name.StartsWith("mesh.health.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
        {
            var subject = "";
            foreach (var tag in tags)
            {
                if (tag.Key == "task" || (tag.Key == "service" && subject.Length == 0))
                {
                    subject = (string)tag.Value!;
                }
            }

            measured.Add((instrument.Name, subject, value));
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return measured;
    }

    [Fact]
    public async Task Only_a_move_in_or_out_of_the_backends_bumps_the_version_and_wakes_waiters()
    {
        var monitor = Monitor();
        var v0 = monitor.Version;
        var wait = monitor.WaitForChangeAsync(v0, CancellationToken.None);
        monitor.Report("shop.1", "shop", ok: true, HealthStatus.Healthy, null);
        Assert.Equal(v0, monitor.Version);
        Assert.False(wait.IsCompleted);

        monitor.Report("shop.1", "shop", ok: false, HealthStatus.Unhealthy, "GET /healthz: 503");
        await wait.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(v0 + 1, monitor.Version);
        Assert.True(monitor.Snapshot.IsUnhealthy("shop.1"));

        monitor.Report("shop.1", "shop", ok: true, HealthStatus.Healthy, null);
        Assert.Equal(v0 + 2, monitor.Version);
        Assert.False(monitor.Snapshot.IsUnhealthy("shop.1"));
        Assert.True(monitor.WaitForChangeAsync(v0, CancellationToken.None).IsCompleted);
    }

    [Fact]
    public void Every_task_unhealthy_is_failing_open_in_the_view_and_the_metrics()
    {
        var monitor = Monitor();
        monitor.Report("shop.1", "shop", ok: false, HealthStatus.Unhealthy, "refused");
        monitor.Report("shop.2", "shop", ok: true, HealthStatus.Healthy, null);
        Assert.False(monitor.IsFailingOpen("shop"));

        monitor.Report("shop.2", "shop", ok: false, HealthStatus.Unhealthy, "GET /healthz: 503");
        Assert.True(monitor.IsFailingOpen("shop"));
        var view = monitor.ServiceView("shop");
        Assert.True(view.FailOpen);
        Assert.Equal("n1", view.Node);
        Assert.Equal(["unhealthy", "unhealthy"], view.Tasks.Select(t => t.Status));
        Assert.Equal("GET /healthz: 503", view.Tasks[1].LastError);
        Assert.Equal(["shop"], monitor.View().FailOpen);

        var measured = Observe();
        Assert.Contains(("mesh.health.fail_open", "shop", 1), measured);
        Assert.Contains(("mesh.health.task_healthy", "shop.1", 0), measured);
        Assert.Contains(("mesh.health.task_healthy", "shop.2", 0), measured);

        // A task removed from the store takes its verdict with it; the one left decides.
        monitor.Forget("shop.1");
        monitor.Report("shop.2", "shop", ok: true, HealthStatus.Healthy, null);
        Assert.False(monitor.IsFailingOpen("shop"));
        Assert.Equal(["shop.2"], monitor.View().Tasks.Select(t => t.Task));
    }
}
