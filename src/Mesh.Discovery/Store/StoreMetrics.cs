using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Mesh.Discovery.Store;

/// <summary>
/// The store's counters on the meter "Mesh": <c>mesh.store.rejected_objects</c> (Prometheus
/// <c>mesh_store_rejected_objects_total</c>; tags kind and source: etcd, remote, file), one per object read back
/// that failed validation and was set aside.
/// </summary>
public sealed class StoreMetrics
{
    public const string MeterName = "Mesh";

    private readonly Counter<long> _rejected;

    public StoreMetrics(IMeterFactory factory)
        : this((factory ?? throw new ArgumentNullException(nameof(factory))).Create(MeterName))
    {
    }

    /// <summary>Counters on <paramref name="meter"/> (tests pass their own, to observe only their store).</summary>
    public StoreMetrics(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _rejected = meter.CreateCounter<long>("mesh.store.rejected_objects", "{object}", "Objects read from the store that failed validation and were set aside");
    }

    /// <summary>Metrics on a meter of their own, for a store built without DI (tests, tools).</summary>
    public static StoreMetrics Standalone() => new(new Meter(MeterName));

    internal void Rejected(string kind, string source) =>
        _rejected.Add(1, new TagList { { "kind", kind }, { "source", source } });
}
