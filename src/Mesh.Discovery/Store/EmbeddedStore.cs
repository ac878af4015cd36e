using System.Text.Json;
using Mesh.Discovery.Model;
using Microsoft.Extensions.Logging;

namespace Mesh.Discovery.Store;

/// <summary>
/// The default store: the whole cluster state in one process, persisted to a JSON file in the state
/// directory after every change (<see cref="StateFile"/>: mode 0600, temporary file + fsync + rename + fsync of the
/// directory, the previous version kept as the last-good copy). Other daemons reach it through the holder's HTTP API
/// (<c>--join</c>).
/// </summary>
public sealed partial class EmbeddedStore : IClusterStore
{
    private const int HistoryLimit = 4096;

    private readonly ReservedPorts _reserved;
    private readonly StateFile? _file;

    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly LinkedList<StoreChange> _history = new();
    private readonly ILogger<EmbeddedStore> _logger;
    private ClusterState _state;
    private TaskCompletionSource _changed = NewSignal();

    public EmbeddedStore(string? stateDirectory, ILogger<EmbeddedStore> logger, ReservedPorts? reserved = null, StoreMetrics? metrics = null)
    {
        _logger = logger;
        _reserved = reserved ?? ReservedPorts.Default;
        _state = ClusterState.Empty;
        if (stateDirectory is not null)
        {
            _file = new StateFile(stateDirectory, logger);
            if (_file.Load() is { } loaded)
            {
                // The file is ours, but it is re-validated like any other store's objects: what is set aside is
                // logged, and gone from the file at the next write.
                var validator = new StoredObjectValidator(logger, metrics ?? StoreMetrics.Standalone(), _reserved, "file");
                _state = validator.Screen(loaded);
                LogLoaded(_file.Path, _state.Revision, _state.Services.Count, _state.Tasks.Count);
            }
        }
    }

    public Task<ClusterState> GetStateAsync(CancellationToken cancellationToken = default) => Task.FromResult(Volatile.Read(ref _state));

    public Task<OverlayNetwork> CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.CreateNetwork(s, spec), n => new(0, StoreObjectKind.Network, n.Name, false), cancellationToken);

    public Task<ClusterNode> RegisterNodeAsync(NodeSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.RegisterNode(s, spec), n => new(0, StoreObjectKind.Node, n.Name, false), cancellationToken);

    public Task RemoveNodeAsync(string name, CancellationToken cancellationToken = default) =>
        MutateAsync(s => (StateTransitions.RemoveNode(s, name), name), n => new(0, StoreObjectKind.Node, n, true), cancellationToken);

    public Task<ClusterService> CreateServiceAsync(ServiceSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.CreateService(s, spec, _reserved), x => new(0, StoreObjectKind.Service, x.Name, false), cancellationToken);

    public Task<ClusterService> UpdateServiceAsync(string name, ServiceUpdate update, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.UpdateService(s, name, update, _reserved), x => new(0, StoreObjectKind.Service, x.Name, false), cancellationToken);

    public Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default) =>
        MutateAsync(s => (StateTransitions.RemoveService(s, name), name), n => new(0, StoreObjectKind.Service, n, true), cancellationToken);

    public Task<ServiceTask> AddTaskAsync(TaskSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.AddTask(s, spec), t => new(0, StoreObjectKind.Task, t.Name, false), cancellationToken);

    public Task RemoveTaskAsync(string name, CancellationToken cancellationToken = default) =>
        MutateAsync(s => (StateTransitions.RemoveTask(s, name), name), n => new(0, StoreObjectKind.Task, n, true), cancellationToken);

    public Task<ServiceTask> UpdateTaskAsync(string name, TaskUpdate update, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.SetTaskState(s, name, update), t => new(0, StoreObjectKind.Task, t.Name, false), cancellationToken);

    public async Task<WatchResult> WatchAsync(long afterRevision, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        while (true)
        {
            Task signal;
            lock (_history)
            {
                var current = _state.Revision;
                if (current != afterRevision)
                {
                    return Since(afterRevision, current);
                }

                signal = _changed.Task;
            }

            try
            {
                await signal.WaitAsync(timeoutSource.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return new WatchResult(afterRevision, [], Resync: false);
            }
        }
    }

    private WatchResult Since(long afterRevision, long current)
    {
        // A revision from the future means the watcher saw another store (or one reset): start over.
        var oldest = _history.First?.Value.Revision ?? current + 1;
        if (afterRevision > current || afterRevision < oldest - 1)
        {
            return new WatchResult(current, [], Resync: true);
        }

        return new WatchResult(current, _history.Where(c => c.Revision > afterRevision).ToArray(), Resync: false);
    }

    private async Task<T> MutateAsync<T>(Func<ClusterState, (ClusterState State, T Result)> transition, Func<T, StoreChange> describe, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (next, result) = transition(_state);
            if (ReferenceEquals(next, _state))
            {
                return result;
            }

            var revision = _state.Revision + 1;
            next = next with { Revision = revision };
            _file?.Save(next);

            TaskCompletionSource signal;
            lock (_history)
            {
                _history.AddLast(describe(result) with { Revision = revision });
                if (_history.Count > HistoryLimit)
                {
                    _history.RemoveFirst();
                }

                Volatile.Write(ref _state, next);
                signal = _changed;
                _changed = NewSignal();
            }

            signal.TrySetResult();
            return result;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded cluster state from {Path} at revision {Revision}: {Services} services, {Tasks} tasks")]
    private partial void LogLoaded(string path, long revision, int services, int tasks);
}
