using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Mesh.Ingress.Telemetry;

/// <summary>
/// Pushes the "Mesh" meter and activity source to an OpenTelemetry collector over OTLP/HTTP
/// (<c>--otlp-endpoint http://collector:4318</c>). OpenTelemetry.Extensions.Hosting does not restore here,
/// so the providers are built with the SDK directly and disposed with the daemon.
/// </summary>
public sealed class OtlpExport : IDisposable
{
    private readonly MeterProvider _meters;
    private readonly TracerProvider _traces;

    public OtlpExport(Uri endpoint, TimeSpan exportInterval)
    {
        _meters = Sdk.CreateMeterProviderBuilder()
            .AddMeter(MeshTelemetry.Name)
            .AddOtlpExporter((exporter, reader) =>
            {
                Configure(exporter, endpoint, "v1/metrics");
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)exportInterval.TotalMilliseconds;
            })
            .Build();
        _traces = Sdk.CreateTracerProviderBuilder()
            .AddSource(MeshTelemetry.Name)
            .AddOtlpExporter(exporter => Configure(exporter, endpoint, "v1/traces"))
            .Build();
    }

    /// <summary>Sends what is buffered now (tests, and shutdown).</summary>
    public bool Flush(TimeSpan timeout) =>
        _meters.ForceFlush((int)timeout.TotalMilliseconds) & _traces.ForceFlush((int)timeout.TotalMilliseconds);

    public void Dispose()
    {
        _meters.Dispose();
        _traces.Dispose();
    }

    private static void Configure(OtlpExporterOptions exporter, Uri endpoint, string path)
    {
        exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
        exporter.Endpoint = new Uri(endpoint, path);
    }
}
