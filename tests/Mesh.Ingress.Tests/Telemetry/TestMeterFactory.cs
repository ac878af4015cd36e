using System.Diagnostics.Metrics;
using Mesh.Ingress.Telemetry;

namespace Mesh.Ingress.Tests.Telemetry;

/// <summary>Meters as the host's factory makes them, disposed with it: for types built by hand in tests.</summary>
internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public static MeshTelemetry Telemetry() => new(new TestMeterFactory());

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options);
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            _meters.ForEach(m => m.Dispose());
        }
    }
}
