using System.Diagnostics;
using System.Diagnostics.Metrics;
using Mesh.Ingress.Telemetry;

namespace Mesh.Ingress.Proxy;

/// <summary>The PROXY v2 relay's instruments on the <c>Mesh</c> meter, by service and protocol (and backend for connections).</summary>
public sealed class ProxyRelayMetrics
{
    public ProxyRelayMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeshTelemetry.Name);
        Connections = meter.CreateCounter<long>("mesh.proxy.connections", description: "Connections (TCP) and flows (UDP) the PROXY v2 relay opened to a backend");
        Active = meter.CreateUpDownCounter<long>("mesh.proxy.active", description: "Connections and UDP flows the PROXY v2 relay holds open now");
        Bytes = meter.CreateCounter<long>("mesh.proxy.bytes", unit: "By", description: "Payload bytes the PROXY v2 relay copied, by direction (to_backend, to_client)");
        Errors = meter.CreateCounter<long>("mesh.proxy.errors", description: "Connections or datagrams the PROXY v2 relay could not carry, by reason");
    }

    public Counter<long> Connections { get; }

    public UpDownCounter<long> Active { get; }

    public Counter<long> Bytes { get; }

    public Counter<long> Errors { get; }

    public void Opened(string service, string protocol, string backend)
    {
        Connections.Add(1, new TagList { { "service", service }, { "protocol", protocol }, { "backend", backend } });
        Active.Add(1, new TagList { { "service", service }, { "protocol", protocol } });
    }

    public void Closed(string service, string protocol) => Active.Add(-1, new TagList { { "service", service }, { "protocol", protocol } });

    public void Copied(string service, string protocol, bool toBackend, long bytes)
    {
        if (bytes > 0)
        {
            Bytes.Add(bytes, new TagList { { "service", service }, { "protocol", protocol }, { "direction", toBackend ? "to_backend" : "to_client" } });
        }
    }

    /// <summary>Reasons: no_backend, connect, reset, flow_limit, too_large, send.</summary>
    public void Failed(string service, string protocol, string reason) =>
        Errors.Add(1, new TagList { { "service", service }, { "protocol", protocol }, { "reason", reason } });
}
