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

    /// <summary>
    /// The series of an instrument and up to three tags, found without building the label text: measurements
    /// come at the rate of DNS queries, and formatting labels for each cost ~600 bytes of garbage per query.
    /// </summary>
    private readonly ConcurrentDictionary<SeriesKey, Series> _byTags = new();

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
        if (tags.Length > 3)
        {
            SeriesOf(instrument, tags).Add(value);
            return;
        }

        var key = new SeriesKey(instrument, Name(tags, 0), Value(tags, 0), Name(tags, 1), Value(tags, 1), Name(tags, 2), Value(tags, 2));
        if (!_byTags.TryGetValue(key, out var series))
        {
            series = SeriesOf(instrument, tags);
            _byTags.TryAdd(key, series);
        }

        series.Add(value);
    }

    private static string? Name(ReadOnlySpan<KeyValuePair<string, object?>> tags, int i) => i < tags.Length ? tags[i].Key : null;

    private static object? Value(ReadOnlySpan<KeyValuePair<string, object?>> tags, int i) => i < tags.Length ? tags[i].Value : null;

    private Series SeriesOf(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = new StringBuilder();
        foreach (var tag in tags)
        {
            labels.Append(labels.Length == 0 ? "" : ",").Append(Sanitize(tag.Key)).Append("=\"")
                .Append((tag.Value?.ToString() ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal))
                .Append('"');
        }

        return _series.GetOrAdd((instrument.Name, labels.ToString()), _ => new Series(instrument is Histogram<double> or Histogram<long> or Histogram<int>, instrument.Description ?? instrument.Name));
    }

    /// <summary>
    /// Tag names and values as plain fields (a KeyValuePair field would compare by reflection, boxing), values by
    /// Equals: strings by content, boxed numbers by value, so equal tag sets share a series.
    /// </summary>
    private readonly record struct SeriesKey(Instrument Instrument, string? Name0, object? Value0, string? Name1, object? Value1, string? Name2, object? Value2);

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
