using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;

namespace Mesh.Ingress.Telemetry;

/// <summary>
/// How many series each instrument's stream may hold. The OpenTelemetry SDK allocates a stream's whole limit up front
/// (2,000 points of ~72 B by default, whether 1 or 2,000 are used): the ~40 streams of instruments whose tags take a
/// handful of fixed values (the runtime's, the process's, DNS rcodes, reconcile results) held ~6 MB of the daemon's
/// live heap at any cluster size (BENCHMARKS.md, scale, "who holds the live heap"). Those get <see cref="Bounded"/>;
/// the per-backend L4 series the room their backend cap needs; every other instrument (tags that name a service, task
/// or backend) keeps the SDK's default.
/// </summary>
public static class MetricLimits
{
    /// <summary>Room for an instrument with fixed tag values; the largest here is <c>mesh.dns.queries</c> (rcode × transport: 19 × 2).</summary>
    public const int Bounded = 100;

    /// <summary>Mesh's instruments whose tags take only fixed values (none names a service, task, backend or address).</summary>
    public static FrozenSet<string> BoundedMeshInstruments { get; } = FrozenSet.Create(StringComparer.Ordinal,
        "mesh.dns.queries", "mesh.dns.forwarded", "mesh.dns.upstream.failures", "mesh.dns.truncated", "mesh.dns.malformed",
        "mesh.store.rejected_objects", "mesh.reconcile.syncs", "mesh.reconcile.duration");

    /// <summary>The view for <paramref name="instrument"/>: null keeps the SDK's default (and the instrument's advice).</summary>
    public static MetricStreamConfiguration? For(Instrument instrument, int l4MaxBackends)
    {
        ArgumentNullException.ThrowIfNull(instrument);
        if (instrument.Meter.Name != MeshTelemetry.Name)
        {
            // Only the runtime's and the process's meters are added besides Mesh's: generations, CPU modes, exception types.
            return new MetricStreamConfiguration { CardinalityLimit = Bounded };
        }

        if (instrument.Name.StartsWith(L4.L4BackendMetrics.InstrumentPrefix, StringComparison.Ordinal))
        {
            return new MetricStreamConfiguration { CardinalityLimit = L4.L4BackendMetrics.SeriesLimit(l4MaxBackends) };
        }

        return BoundedMeshInstruments.Contains(instrument.Name) ? new MetricStreamConfiguration { CardinalityLimit = Bounded } : null;
    }
}
