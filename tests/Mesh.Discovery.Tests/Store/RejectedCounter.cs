using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Mesh.Discovery.Tests.Store;

/// <summary>Sums <c>mesh.store.rejected_objects</c> by kind, on one test's own meter (tests run in parallel).</summary>
public sealed class RejectedCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _byKind = new();

    public RejectedCounter(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "mesh.store.rejected_objects")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "kind")
                {
                    _byKind.AddOrUpdate((string)tag.Value!, value, (_, sum) => sum + value);
                }
            }
        });
        _listener.Start();
    }

    public long Count(string kind) => _byKind.GetValueOrDefault(kind);

    public long Total => _byKind.Values.Sum();

    public void Dispose() => _listener.Dispose();
}
