using System.Collections.Frozen;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Mesh.Discovery.Model;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Telemetry.L4;

/// <summary>
/// Per-backend L4 metrics on the "Mesh" meter, read from the kernel when a reader collects (a <c>/metrics</c> scrape,
/// an OTLP export) and never per packet: <c>mesh.l4.backend.connections</c> (a gauge, both dataplanes) and, on the
/// ipvs dataplane, IPVS's cumulative counters. One kernel read serves every instrument of a collection and any other
/// collection within <see cref="RefreshInterval"/>, so a scraper (or several) costs at most one dump per interval.
/// Series exist for the known backends of the last applied state (<see cref="Update"/>), 0 when the kernel has nothing
/// for them; before the first state there are none.
/// </summary>
public sealed partial class L4BackendMetrics
{
    /// <summary>How long one kernel read serves collections.</summary>
    public static readonly TimeSpan DefaultRefreshInterval = TimeSpan.FromSeconds(5);

    /// <summary>Conntrack entries read per dump at most (~100 bytes each on the wire; a few MB per dump at the cap).</summary>
    public const int DefaultConntrackLimit = 100_000;

    /// <summary>
    /// Backends the series cover by default (<c>--l4-metrics-backends</c>). The metrics SDK keeps room for a fixed
    /// number of series per instrument from the start (its own default, 2,000, is 1,000 backends: beyond it every
    /// backend's values were summed into one overflow series, silently); at two series per backend this is 20,000 each.
    /// </summary>
    public const int DefaultMaxBackends = 10_000;

    /// <summary>The instruments' common name prefix (a view gives them room for <see cref="SeriesLimit"/> series).</summary>
    public const string InstrumentPrefix = "mesh.l4.backend.";

    /// <summary>The series one instrument needs for <paramref name="maxBackends"/> backends: two each (state or direction).</summary>
    public static int SeriesLimit(int maxBackends) => Math.Max(1, 2 * maxBackends);

    private readonly IL4BackendSource _source;
    private readonly ILogger<L4BackendMetrics> _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private volatile ClusterState? _state;
    private (ClusterState State, L4BackendDirectory Directory, Covered Covered)? _directory;
    private Reading _reading = Reading.None;
    private long _readAt;
    private bool _read;

    /// <param name="maxBackends">How many backends the series cover at most (0: none, and the kernel is never read); the
    /// telemetry registration must give the instruments room for as many (<see cref="SeriesLimit"/>).</param>
    public L4BackendMetrics(IL4BackendSource source, IMeterFactory meters, ILogger<L4BackendMetrics> logger, TimeSpan? refreshInterval = null, TimeProvider? time = null, int maxBackends = DefaultMaxBackends)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBackends);
        _source = source;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        RefreshInterval = refreshInterval ?? DefaultRefreshInterval;
        MaxBackends = maxBackends;
        var meter = meters.Create(MeshTelemetry.Name);
        meter.CreateObservableGauge(InstrumentPrefix + "connections", ObserveConnections,
            description: "Connections the ingress sandbox's kernel tracks to the task now, by service, published port, task and state (active: TCP established; inactive: TCP opening, closing or in TIME_WAIT, and UDP): conntrack entries DNATed to it (nftables), IPVS ActiveConn/InActConn (ipvs)");
        meter.CreateObservableCounter(InstrumentPrefix + "connections.opened", () => ObserveCounters(c => c.Opened),
            description: "ipvs dataplane: connections IPVS scheduled to the task since its real server was added");
        meter.CreateObservableCounter(InstrumentPrefix + "packets", () => ObserveDirections(c => c.InPackets, c => c.OutPackets),
            description: "ipvs dataplane: packets IPVS forwarded for the task, by direction (in: client to task)");
        meter.CreateObservableCounter(InstrumentPrefix + "bytes", () => ObserveDirections(c => c.InBytes, c => c.OutBytes),
            description: "ipvs dataplane: bytes IPVS forwarded for the task, by direction (in: client to task)");
    }

    public TimeSpan RefreshInterval { get; }

    public int MaxBackends { get; }

    /// <summary>
    /// The state this node just applied (the node loop calls it after each pass). Its backends are listed only when a
    /// reader collects: at 10,000 services the directory is 100,000 keys (~10 MB), not worth building on every pass of a
    /// daemon nobody scrapes.
    /// </summary>
    public void Update(ClusterState state) => _state = state;

    /// <summary>
    /// The series known for the applied state and the kernel's samples of them, read again when the last read is older
    /// than <see cref="RefreshInterval"/>. Only what the kernel reported is kept (a series it has nothing for reports 0
    /// when observed): at 10,000 services most of 50,000 backends have no connection, and a zero sample each was ~3 MB
    /// held between scrapes (issue 12, daemon RSS).
    /// </summary>
    private Reading Current()
    {
        if (_state is not { } state || MaxBackends == 0)
        {
            return Reading.None;
        }

        lock (_gate)
        {
            if (_read && _time.GetElapsedTime(_readAt) < RefreshInterval)
            {
                return _reading;
            }

            if (_directory is not { } built || !ReferenceEquals(built.State, state))
            {
                var fresh = L4BackendDirectory.From(state);
                built = (state, fresh, Cover(_source.Known(fresh)));
                _directory = built;
            }

            var (_, directory, covered) = built;

            _readAt = _time.GetTimestamp();
            _read = true;
            var started = Stopwatch.GetTimestamp();
            try
            {
                var samples = _source.Read(directory);
                _reading = new Reading(covered.Keys, (covered.Set is { } set ? samples.Where(s => set.Contains(s.Key)) : samples).ToDictionary(s => s.Key));
                if (_source is ConntrackBackendSource { Truncated: true } conntrack)
                {
                    LogTruncated(_source.Name, conntrack.Limit);
                }

                LogRead(_source.Name, _reading.Samples.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            catch (Exception e) when (e is NetlinkException or NetworkNamespaceException or IOException)
            {
                // Nothing rather than stale numbers: a series that disappears says "unknown", an old value would lie.
                _reading = Reading.None;
                LogReadFailed(e, _source.Name, RefreshInterval.TotalSeconds);
            }

            return _reading;
        }
    }

    /// <summary>
    /// The known backends, or when there are more than <see cref="MaxBackends"/> the first of them by service, port and
    /// task (the same ones on every read of a state), said once per state: left to the SDK, the rest would be summed
    /// into one overflow series that names nothing.
    /// </summary>
    private Covered Cover(IEnumerable<L4BackendKey> known)
    {
        var keys = known as IReadOnlyCollection<L4BackendKey> ?? [.. known];
        if (keys.Count <= MaxBackends)
        {
            return new Covered(keys, null);
        }

        L4BackendKey[] first = [.. keys
            .OrderBy(k => k.Service, StringComparer.Ordinal).ThenBy(k => k.Port, StringComparer.Ordinal).ThenBy(k => k.Task, StringComparer.Ordinal)
            .Take(MaxBackends)];
        LogNotCovered(keys.Count, MaxBackends, first[^1].Service);
        return new Covered(first, first.ToHashSet());
    }

    private IEnumerable<Measurement<long>> ObserveConnections()
    {
        var reading = Current();
        foreach (var key in reading.Known)
        {
            var sample = reading.Samples.GetValueOrDefault(key);
            yield return new Measurement<long>(sample?.Active ?? 0, [.. Tags(key), new("state", "active")]);
            yield return new Measurement<long>(sample?.Inactive ?? 0, [.. Tags(key), new("state", "inactive")]);
        }
    }

    private IEnumerable<Measurement<long>> ObserveCounters(Func<L4BackendCounters, long> value) =>
        Current().Samples.Values.Where(s => s.Counters is not null).Select(s => new Measurement<long>(value(s.Counters!), Tags(s.Key)));

    private IEnumerable<Measurement<long>> ObserveDirections(Func<L4BackendCounters, long> inbound, Func<L4BackendCounters, long> outbound) =>
        Current().Samples.Values.Where(s => s.Counters is not null).SelectMany(s => new[]
        {
            new Measurement<long>(inbound(s.Counters!), [.. Tags(s.Key), new("direction", "in")]),
            new Measurement<long>(outbound(s.Counters!), [.. Tags(s.Key), new("direction", "out")]),
        });

    private static KeyValuePair<string, object?>[] Tags(L4BackendKey key) =>
        [new("service", key.Service), new("port", key.Port), new("task", key.Task)];

    /// <summary>The backends a state's series cover; <paramref name="Set"/> only when some were left out.</summary>
    private sealed record Covered(IReadOnlyCollection<L4BackendKey> Keys, HashSet<L4BackendKey>? Set);

    /// <summary>One read: every series the source knows for the state, and the samples of those the kernel reported.</summary>
    private sealed record Reading(IEnumerable<L4BackendKey> Known, IReadOnlyDictionary<L4BackendKey, L4BackendSample> Samples)
    {
        public static Reading None { get; } = new([], FrozenDictionary<L4BackendKey, L4BackendSample>.Empty);
    }
}
