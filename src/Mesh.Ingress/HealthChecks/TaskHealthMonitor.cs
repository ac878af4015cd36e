using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using Mesh.Ingress.Telemetry;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

/// <summary>
/// This node's health verdicts on the tasks it probes (<see cref="HealthProber"/> writes, the planners, the API and
/// the metrics read). Only a change that moves a task in or out of the backends (to or from unhealthy) bumps
/// <see cref="Version"/> and wakes <see cref="WaitForChangeAsync"/>: the node loop and the L7 entry then re-plan from
/// the state they already hold, without reading the store. Never written to the store: each node's view is its own.
/// </summary>
public sealed partial class TaskHealthMonitor
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _tasks = new(StringComparer.Ordinal);
    private readonly ILogger<TaskHealthMonitor> _logger;
    private readonly TimeProvider _time;
    private readonly Counter<long> _probes;
    private readonly Counter<long> _transitions;
    private HashSet<string> _failOpen = new(StringComparer.Ordinal);
    private long _version;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile BackendHealth _snapshot = BackendHealth.None;

    public TaskHealthMonitor(string node, IMeterFactory meters, ILogger<TaskHealthMonitor> logger, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(meters);
        Node = node;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        var meter = meters.Create(MeshTelemetry.Name);
        _probes = meter.CreateCounter<long>("mesh.health.probes", description: "Health probes this node ran, by service and result (ok, failed)");
        _transitions = meter.CreateCounter<long>("mesh.health.transitions", description: "Health status changes of tasks on this node, by service and new status");
        meter.CreateObservableGauge("mesh.health.task_healthy", ObserveTasks, description: "1 when this node finds the task healthy, 0 when unhealthy (tasks not probed to a verdict yet are left out)");
        meter.CreateObservableGauge("mesh.health.fail_open", ObserveFailOpen, description: "1 when every task of the service is unhealthy on this node and it routes to all of them (fail open)");
    }

    public string Node { get; }

    /// <summary>Bumped at each change of the backends: a task became unhealthy or stopped being so.</summary>
    public long Version
    {
        get
        {
            lock (_gate)
            {
                return _version;
            }
        }
    }

    /// <summary>The unhealthy tasks now: what the planners take out of the backends.</summary>
    public BackendHealth Snapshot => _snapshot;

    /// <summary>Completes once <see cref="Version"/> differs from <paramref name="seen"/>.</summary>
    public Task WaitForChangeAsync(long seen, CancellationToken ct)
    {
        lock (_gate)
        {
            return _version != seen ? Task.CompletedTask : _changed.Task.WaitAsync(ct);
        }
    }

    /// <summary>Records one probe of <paramref name="task"/> and the status it leaves the task in.</summary>
    public void Report(string task, string service, bool ok, HealthStatus status, string? error)
    {
        _probes.Add(1, new KeyValuePair<string, object?>("service", service), new KeyValuePair<string, object?>("result", ok ? "ok" : "failed"));
        bool moved;
        lock (_gate)
        {
            var had = _tasks.TryGetValue(task, out var before);
            var changed = !had || before.Status != status;
            _tasks[task] = new Entry(service, status, changed ? _time.GetUtcNow() : before.Since, ok ? null : error);
            moved = (before.Status == HealthStatus.Unhealthy) != (status == HealthStatus.Unhealthy);
            if (changed && had)
            {
                _transitions.Add(1, new KeyValuePair<string, object?>("service", service), new KeyValuePair<string, object?>("status", Name(status)));
                LogStatusChanged(task, service, Name(before.Status), Name(status), error ?? "");
            }

            if (moved)
            {
                PublishLocked();
            }
            else if (changed)
            {
                UpdateFailOpenLocked(); // a task seen for the first time can end a fail-open
            }
        }
    }

    /// <summary>A task no longer probed (removed, its service's check gone): its verdict goes with it.</summary>
    public void Forget(string task)
    {
        lock (_gate)
        {
            if (_tasks.Remove(task, out var gone) && gone.Status == HealthStatus.Unhealthy)
            {
                PublishLocked();
            }
            else
            {
                UpdateFailOpenLocked();
            }
        }
    }

    public NodeHealthView View()
    {
        lock (_gate)
        {
            return new NodeHealthView(Node, _tasks.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => ViewOf(t.Key, t.Value)).ToArray(), _failOpen.Order(StringComparer.Ordinal).ToArray());
        }
    }

    public ServiceHealthView ServiceView(string service)
    {
        lock (_gate)
        {
            return new ServiceHealthView(Node, _failOpen.Contains(service),
                _tasks.Where(t => t.Value.Service == service).OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => ViewOf(t.Key, t.Value)).ToArray());
        }
    }

    /// <summary>Whether this node routes <paramref name="service"/> to all its tasks because every one is unhealthy.</summary>
    public bool IsFailingOpen(string service)
    {
        lock (_gate)
        {
            return _failOpen.Contains(service);
        }
    }

    public static string Name(HealthStatus status) => status switch
    {
        HealthStatus.Healthy => "healthy",
        HealthStatus.Unhealthy => "unhealthy",
        _ => "unknown",
    };

    private static TaskHealthView ViewOf(string task, Entry e) => new(task, e.Service, Name(e.Status), e.Since, e.LastError);

    private void PublishLocked()
    {
        _snapshot = new BackendHealth(_tasks.Where(t => t.Value.Status == HealthStatus.Unhealthy).Select(t => t.Key).ToFrozenSet(StringComparer.Ordinal));
        UpdateFailOpenLocked();
        _version++;
        _changed.TrySetResult();
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private void UpdateFailOpenLocked()
    {
        var failOpen = FailOpenLocked();
        foreach (var service in failOpen.Except(_failOpen))
        {
            LogFailOpen(service);
        }

        foreach (var service in _failOpen.Except(failOpen))
        {
            LogFailOpenEnded(service);
        }

        _failOpen = failOpen;
    }

    /// <summary>Services whose every probed task is unhealthy: the planners route them to all (BackendSet does the same sum).</summary>
    private HashSet<string> FailOpenLocked() =>
        _tasks.GroupBy(t => t.Value.Service, StringComparer.Ordinal)
            .Where(g => g.All(t => t.Value.Status == HealthStatus.Unhealthy))
            .Select(g => g.Key)
            .ToHashSet(StringComparer.Ordinal);

    private IEnumerable<Measurement<int>> ObserveTasks()
    {
        lock (_gate)
        {
            return _tasks.Where(t => t.Value.Status != HealthStatus.Unknown)
                .Select(t => new Measurement<int>(t.Value.Status == HealthStatus.Healthy ? 1 : 0,
                    new KeyValuePair<string, object?>("service", t.Value.Service), new KeyValuePair<string, object?>("task", t.Key)))
                .ToArray();
        }
    }

    private IEnumerable<Measurement<int>> ObserveFailOpen()
    {
        lock (_gate)
        {
            return _tasks.Values.Select(e => e.Service).Distinct(StringComparer.Ordinal)
                .Select(s => new Measurement<int>(_failOpen.Contains(s) ? 1 : 0, new KeyValuePair<string, object?>("service", s)))
                .ToArray();
        }
    }

    private readonly record struct Entry(string Service, HealthStatus Status, DateTimeOffset Since, string? LastError);
}
