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

    private readonly IL4BackendSource _source;
    private readonly ILogger<L4BackendMetrics> _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private volatile ClusterState? _state;
    private (ClusterState State, L4BackendDirectory Directory)? _directory;
    private Reading _reading = Reading.None;
    private long _readAt;
    private bool _read;

    public L4BackendMetrics(IL4BackendSource source, IMeterFactory meters, ILogger<L4BackendMetrics> logger, TimeSpan? refreshInterval = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(meters);
        _source = source;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        RefreshInterval = refreshInterval ?? DefaultRefreshInterval;
        var meter = meters.Create(MeshTelemetry.Name);
        meter.CreateObservableGauge("mesh.l4.backend.connections", ObserveConnections,
            description: "Connections the ingress sandbox's kernel tracks to the task now, by service, published port, task and state (active: TCP established; inactive: TCP opening, closing or in TIME_WAIT, and UDP): conntrack entries DNATed to it (nftables), IPVS ActiveConn/InActConn (ipvs)");
        meter.CreateObservableCounter("mesh.l4.backend.connections.opened", () => ObserveCounters(c => c.Opened),
            description: "ipvs dataplane: connections IPVS scheduled to the task since its real server was added");
        meter.CreateObservableCounter("mesh.l4.backend.packets", () => ObserveDirections(c => c.InPackets, c => c.OutPackets),
            description: "ipvs dataplane: packets IPVS forwarded for the task, by direction (in: client to task)");
        meter.CreateObservableCounter("mesh.l4.backend.bytes", () => ObserveDirections(c => c.InBytes, c => c.OutBytes),
            description: "ipvs dataplane: bytes IPVS forwarded for the task, by direction (in: client to task)");
    }

    public TimeSpan RefreshInterval { get; }

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
        if (_state is not { } state)
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
                built = (state, L4BackendDirectory.From(state));
                _directory = built;
            }

            var directory = built.Directory;

            _readAt = _time.GetTimestamp();
            _read = true;
            var started = Stopwatch.GetTimestamp();
            try
            {
                _reading = new Reading(_source.Known(directory), _source.Read(directory).ToDictionary(s => s.Key));
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

    /// <summary>One read: every series the source knows for the state, and the samples of those the kernel reported.</summary>
    private sealed record Reading(IEnumerable<L4BackendKey> Known, IReadOnlyDictionary<L4BackendKey, L4BackendSample> Samples)
    {
        public static Reading None { get; } = new([], FrozenDictionary<L4BackendKey, L4BackendSample>.Empty);
    }
}
