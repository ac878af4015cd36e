using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Mesh.Ingress.Telemetry;

/// <summary>
/// Serves the "Mesh" meter (reconciler, dataplanes, embedded DNS) in Prometheus' text format at <c>/metrics</c>:
/// counters as totals, histograms as count and sum, per tag set. No Prometheus package restores here, so a
/// <see cref="MeterListener"/> aggregates in memory.
/// </summary>
public sealed class PrometheusMetrics : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Name, string Tags), Series> _series = new();

    public PrometheusMetrics()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeshTelemetry.Name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    public string Render()
    {
        var text = new StringBuilder();
        foreach (var family in _series.GroupBy(s => s.Key.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var first = family.First().Value;
            var name = Sanitize(family.Key);
            text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {first.Description}\n");
            text.Append(CultureInfo.InvariantCulture, $"# TYPE {name} {(first.IsHistogram ? "summary" : "counter")}\n");
            foreach (var (key, series) in family.OrderBy(s => s.Key.Tags, StringComparer.Ordinal))
            {
                var labels = key.Tags.Length == 0 ? "" : "{" + key.Tags + "}";
                if (series.IsHistogram)
                {
                    text.Append(CultureInfo.InvariantCulture, $"{name}_count{labels} {series.Count}\n");
                    text.Append(CultureInfo.InvariantCulture, $"{name}_sum{labels} {series.Sum.ToString("R", CultureInfo.InvariantCulture)}\n");
                }
                else
                {
                    text.Append(CultureInfo.InvariantCulture, $"{name}_total{labels} {series.Sum.ToString("R", CultureInfo.InvariantCulture)}\n");
                }
            }
        }

        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = new StringBuilder();
        foreach (var tag in tags)
        {
            labels.Append(labels.Length == 0 ? "" : ",").Append(Sanitize(tag.Key)).Append("=\"")
                .Append((tag.Value?.ToString() ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal))
                .Append('"');
        }

        var series = _series.GetOrAdd((instrument.Name, labels.ToString()), _ => new Series(instrument is Histogram<double> or Histogram<long> or Histogram<int>, instrument.Description ?? instrument.Name));
        series.Add(value);
    }

    private static string Sanitize(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_'));

    private sealed class Series(bool isHistogram, string description)
    {
        private readonly Lock _lock = new();
        private long _count;
        private double _sum;

        public bool IsHistogram { get; } = isHistogram;

        public string Description { get; } = description;

        public long Count
        {
            get
            {
                lock (_lock)
                {
                    return _count;
                }
            }
        }

        public double Sum
        {
            get
            {
                lock (_lock)
                {
                    return _sum;
                }
            }
        }

        public void Add(double value)
        {
            lock (_lock)
            {
                _count++;
                _sum += value;
            }
        }
    }
}
