using System.Text.Json;
using Etcdserverpb;
using Grpc.Core;
using Mesh.Discovery.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

namespace Mesh.Discovery.Store.Etcd;

/// <summary>
/// <see cref="IClusterStore"/> on a real etcd cluster, over etcd's v3 gRPC API (dotnet-etcd).
/// <para>
/// Layout under <see cref="EtcdStoreOptions.Prefix"/> (default <c>/mesh/</c>), values in <see cref="MeshJson"/>:
/// <c>networks/&lt;name&gt;</c>, <c>nodes/&lt;name&gt;</c>, <c>services/&lt;name&gt;</c>,
/// <c>tasks/&lt;service&gt;/&lt;task&gt;</c> (grouped by service so removing a service is one range delete,
/// whatever its task count: etcd refuses transactions of more than 128 operations by default),
/// <c>alive/&lt;node&gt;</c> (attached to the lease of that node's own daemon, <see cref="EtcdStoreOptions.Node"/>) and
/// <c>revision</c>, the write fence.
/// </para>
/// <para>
/// Reading: one full read of the prefix when the store is first used, then one watch stream from the revision after
/// it whose events are applied to that view key by key (<see cref="EtcdView"/>: only the keys an event names are
/// decoded and validated). A full read again only when etcd compacted the history the stream needs. A read
/// (<see cref="GetStateAsync"/>, and every mutation's read) is linearizable without transferring the state: one range
/// over the prefix for the keys changed after the view's revision (keys only) and the key count; when that shows
/// nothing the view lacks, the view is current, else the read waits for the stream to deliver the rest.
/// </para>
/// <para>
/// Writing: the pure <see cref="StateTransitions"/> function runs on that current state, and the object puts/deletes
/// plus a new fence value commit in ONE transaction whose only compare is "the fence's mod revision is what I read".
/// Every mutation rewrites the fence, so the commit succeeds only if no other mutation committed since the read:
/// allocations (VIPs, marks, sandbox and task IPs, published ports) are never handed out twice, however many daemons
/// write. A lost race re-runs the whole read-compute-commit (bounded, with backoff); a request that fails validation
/// changes nothing.
/// </para>
/// <para>
/// Liveness: in the state <see cref="GetStateAsync"/> returns, the tasks of a node without an <c>alive/&lt;node&gt;</c>
/// key are <see cref="TaskState.NodeDown"/>. The daemon's lease is kept alive over one keep-alive stream; when it stops,
/// etcd deletes the key after the TTL and every reader sees the node's tasks go down.
/// </para>
/// <para>
/// Nothing read from etcd is trusted: every object is decoded and validated like an API request
/// (<see cref="StoredObjectValidator"/>); one that fails is set aside with a log line and a count in
/// <c>mesh.store.rejected_objects</c>, and the rest of the state is served and converged as usual.
/// </para>
/// </summary>
public sealed partial class EtcdStore : IClusterStore, IAsyncDisposable, IDisposable
{
    /// <summary>How long a read waits for the watch stream to deliver what etcd already has before it reads everything itself.</summary>
    private static readonly TimeSpan CatchUpLimit = TimeSpan.FromSeconds(2);

    /// <summary>How many changes the view keeps for watchers: a watcher further behind gets a stream of its own.</summary>
    private const int HistoryLimit = 4096;

    private readonly EtcdStoreOptions _options;
    private readonly EtcdClient _client;
    private readonly ILogger _logger;
    private readonly string _prefix;
    private readonly EtcdLayout _layout;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _leaseLock = new(1, 1);
    private readonly ResiliencePipeline _commitRetry;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, string> _ownNodes = new(StringComparer.OrdinalIgnoreCase); // name → advertise address
    private readonly object _viewGate = new();
    private EtcdView? _view;
    private TaskCompletionSource _viewChanged = NewSignal();

    /// <summary>The view's changes since <see cref="_historyFrom"/> (oldest first, at most <see cref="HistoryLimit"/>):
    /// what <see cref="WatchAsync"/> answers from without a stream of its own.</summary>
    private readonly List<StoreChange> _history = [];
    private long _historyFrom = long.MaxValue;
    private bool _streaming;
    private Task? _watcher;
    private long _leaseId;
    private TimeSpan _grantedTtl;
    private Task? _keepAlive;

    public EtcdStore(EtcdStoreOptions options, ILogger<EtcdStore>? logger = null, StoreMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Prefix.StartsWith('/') || !options.Prefix.EndsWith('/'))
        {
            throw new ArgumentException($"prefix '{options.Prefix}' must start and end with '/'", nameof(options));
        }

        _options = options;
        _prefix = options.Prefix;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _client = new EtcdClient(options);
        _layout = new EtcdLayout(_prefix, new StoredObjectValidator(_logger, metrics ?? StoreMetrics.Standalone(), options.ReservedPorts, "etcd"));
        _commitRetry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<CommitRaceException>(),
                MaxRetryAttempts = Math.Max(options.MaxCommitAttempts - 1, 1),
                Delay = TimeSpan.FromMilliseconds(2),
                MaxDelay = TimeSpan.FromMilliseconds(100),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .Build();
    }

    public EtcdStoreOptions Options => _options;

    /// <summary>The lease this instance keeps its own node (<see cref="EtcdStoreOptions.Node"/>) alive with (0 before it registered).</summary>
    public long LeaseId => Interlocked.Read(ref _leaseId);

    public async Task<ClusterState> GetStateAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return (await CurrentAsync(cancellationToken).ConfigureAwait(false)).Visible;
        }
        catch (EtcdException e)
        {
            throw Refused(e);
        }
    }

    private static StoreUnavailableException Refused(EtcdException e) => new($"etcd refused the request: {e.Message}", e);

    public Task<OverlayNetwork> CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.CreateNetwork(s, spec), null, cancellationToken);

    public async Task<ClusterNode> RegisterNodeAsync(NodeSpec spec, CancellationToken cancellationToken = default)
    {
        // Liveness is per node: only the daemon of the node itself puts (and keeps) its alive key, on its own lease.
        // A registration of another node (through this daemon's API) writes the node object only.
        var own = _options.Node is { } self && string.Equals(spec.Name, self, StringComparison.OrdinalIgnoreCase);
        var node = await MutateAsync(s => StateTransitions.RegisterNode(s, spec), own ? n => n : null, cancellationToken).ConfigureAwait(false);
        if (own)
        {
            lock (_ownNodes)
            {
                _ownNodes[node.Name] = node.AdvertiseAddress;
            }
        }

        return node;
    }

    /// <summary>Removes a node (see <see cref="StateTransitions.RemoveNode"/>) and its alive key, whoever's lease holds it.</summary>
    public async Task RemoveNodeAsync(string name, CancellationToken cancellationToken = default)
    {
        var removed = await MutateAsync(
            s =>
            {
                var next = StateTransitions.RemoveNode(s, name);
                return (next, s.Nodes.First(n => !next.Nodes.Contains(n)).Name);
            },
            null,
            cancellationToken,
            node => [new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = _layout.Key(_prefix + EtcdLayout.AliveDir + node) } }]).ConfigureAwait(false);
        lock (_ownNodes)
        {
            _ownNodes.Remove(removed);
        }
    }

    public Task<ClusterService> CreateServiceAsync(ServiceSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.CreateService(s, spec, _options.ReservedPorts), null, cancellationToken);

    public Task<ClusterService> UpdateServiceAsync(string name, ServiceUpdate update, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.UpdateService(s, name, update, _options.ReservedPorts), null, cancellationToken);

    public Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default) =>
        MutateAsync(s => (StateTransitions.RemoveService(s, name), name), null, cancellationToken);

    public Task<ServiceTask> AddTaskAsync(TaskSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.AddTask(s, spec), null, cancellationToken);

    public Task RemoveTaskAsync(string name, CancellationToken cancellationToken = default) =>
        MutateAsync(s => (StateTransitions.RemoveTask(s, name), name), null, cancellationToken);

    public Task<ServiceTask> UpdateTaskAsync(string name, TaskUpdate update, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.SetTaskState(s, name, update), null, cancellationToken);

    /// <summary>
    /// The changes after <paramref name="afterRevision"/>: served from the view's one watch stream when its history
    /// reaches back that far (every waiter of the daemon — both sync loops, the DNS follower, the probers, the API's
    /// long polls — then shares that stream), else from a stream of its own. Returns the changes (whole revisions
    /// only), an empty result at <paramref name="afterRevision"/> after <paramref name="timeout"/>, or
    /// <see cref="WatchResult.Resync"/> when etcd compacted that history away (or the revision is from the future:
    /// another cluster). A stream that drops is reopened from the same revision on the next member; when no member
    /// answers, <see cref="StoreUnavailableException"/>. A node's liveness flipping is reported as a change of that node.
    /// </summary>
    public async Task<WatchResult> WatchAsync(long afterRevision, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        EnsureWatcher();
        try
        {
            while (true)
            {
                Task changed;
                lock (_viewGate)
                {
                    if (_view is not { } view || !_streaming || afterRevision < _historyFrom || afterRevision > view.Revision)
                    {
                        // No view (first use, a compaction being re-read), its stream down, history it no longer
                        // keeps, or a revision it has not seen (ahead of it, or another store's life): etcd's own answer.
                        break;
                    }

                    if (view.Revision > afterRevision)
                    {
                        return new WatchResult(view.Revision, _history.Where(c => c.Revision > afterRevision).ToList(), Resync: false);
                    }

                    changed = _viewChanged.Task;
                }

                await changed.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return new WatchResult(afterRevision, [], Resync: false);
        }

        return await WatchOnOwnStreamAsync(afterRevision, deadline, cancellationToken).ConfigureAwait(false);
    }

    private async Task<WatchResult> WatchOnOwnStreamAsync(long afterRevision, CancellationTokenSource deadline, CancellationToken cancellationToken)
    {
        var create = new WatchCreateRequest { Key = _layout.PrefixKey, RangeEnd = _layout.PrefixEnd, StartRevision = Math.Max(afterRevision + 1, 1) };
        var failures = new List<string>();
        var limit = _options.Endpoints.Count * (Math.Max(_options.TransportRetries, 1) + 1);
        try
        {
            while (true)
            {
                var (call, endpoint) = _client.OpenWatch(deadline.Token);
                using (call)
                {
                    try
                    {
                        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create }, deadline.Token).ConfigureAwait(false);
                        while (await call.ResponseStream.MoveNext(deadline.Token).ConfigureAwait(false))
                        {
                            var answer = call.ResponseStream.Current;
                            failures.Clear(); // this member answers
                            if (answer.CompactRevision > 0)
                            {
                                LogCompacted(afterRevision, answer.CompactRevision);
                                return new WatchResult(answer.Header.Revision, [], Resync: true);
                            }

                            if (answer.Canceled)
                            {
                                failures.Add($"{endpoint.Authority}: watch canceled: {answer.CancelReason}");
                                break;
                            }

                            if (answer.Created && answer.Header.Revision < afterRevision)
                            {
                                return new WatchResult(answer.Header.Revision, [], Resync: true);
                            }

                            if (answer.Events.Count > 0)
                            {
                                return new WatchResult(answer.Events.Max(e => e.Kv.ModRevision), Describe(answer.Events), Resync: false);
                            }
                        }
                    }
                    catch (RpcException e) when (!deadline.IsCancellationRequested && EtcdClient.IsTransient(e))
                    {
                        failures.Add($"{endpoint.Authority}: {e.Status.Detail}");
                        LogWatchDropped(endpoint.Authority, e.Status.Detail);
                    }
                    catch (IOException e) when (!deadline.IsCancellationRequested)
                    {
                        failures.Add($"{endpoint.Authority}: {e.Message}");
                        LogWatchDropped(endpoint.Authority, e.Message);
                    }
                }

                // The stream ended without an answer (member stopping, connection cut): resume elsewhere, same revision.
                _client.Demote(endpoint);
                if (failures.Count >= limit)
                {
                    throw new StoreUnavailableException($"etcd is unreachable (watch over {_client.Describe}): {string.Join("; ", failures.TakeLast(_options.Endpoints.Count))}");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(50 * Math.Min(failures.Count + 1, 10)), deadline.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException || (e is RpcException { StatusCode: StatusCode.Cancelled } && deadline.IsCancellationRequested))
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return new WatchResult(afterRevision, [], Resync: false);
        }
    }

    private List<StoreChange> Describe(IEnumerable<Mvccpb.Event> events)
    {
        var changes = new List<StoreChange>();
        foreach (var e in events)
        {
            var key = e.Kv.Key.ToStringUtf8();
            if (!key.StartsWith(_prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var deleted = e.Type == Mvccpb.Event.Types.EventType.Delete;
            var rest = key[_prefix.Length..];
            StoreChange? change = rest switch
            {
                _ when rest.StartsWith(EtcdLayout.NetworksDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Network, rest[EtcdLayout.NetworksDir.Length..], deleted),
                _ when rest.StartsWith(EtcdLayout.NodesDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Node, rest[EtcdLayout.NodesDir.Length..], deleted),
                _ when rest.StartsWith(EtcdLayout.ServicesDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Service, rest[EtcdLayout.ServicesDir.Length..], deleted),
                _ when rest.StartsWith(EtcdLayout.TasksDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Task, rest[(rest.LastIndexOf('/') + 1)..], deleted),
                // The node is still registered; its tasks went node-down (or came back up).
                _ when rest.StartsWith(EtcdLayout.AliveDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Node, rest[EtcdLayout.AliveDir.Length..], false),
                _ => null,
            };

            if (change is not null)
            {
                change = change with { Revision = e.Kv.ModRevision };
                if (!changes.Contains(change))
                {
                    changes.Add(change);
                }
            }
        }

        return changes;
    }

    /// <summary>Compacts etcd's history up to <paramref name="revision"/> (tests and operators; etcd normally auto-compacts).</summary>
    public Task CompactAsync(long revision, CancellationToken cancellationToken = default) => _client.CompactAsync(revision, cancellationToken);

    /// <summary>Gives up this instance's lease now (a node leaving on purpose): its nodes' tasks leave the state at once.</summary>
    public async Task RevokeLeaseAsync(CancellationToken cancellationToken = default)
    {
        var id = Interlocked.Exchange(ref _leaseId, 0);
        lock (_ownNodes)
        {
            _ownNodes.Clear();
        }

        if (id != 0)
        {
            await _client.LeaseRevokeAsync(id, cancellationToken).ConfigureAwait(false);
        }
    }

    // ---- reading -----------------------------------------------------------------------------------------

    /// <summary>
    /// The current state, linearizably: the watched view once one range shows etcd holds nothing under the prefix the
    /// view lacks (no key modified after the view's revision, the same key count); else waits for the stream to catch
    /// up, and past <see cref="CatchUpLimit"/> reads everything itself. etcd unreachable: <see cref="StoreUnavailableException"/>.
    /// </summary>
    private async Task<EtcdSnapshot> CurrentAsync(CancellationToken ct)
    {
        EnsureWatcher();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            Task changed;
            EtcdView? view;
            lock (_viewGate)
            {
                view = _view;
                changed = _viewChanged.Task;
            }

            if (view is null || System.Diagnostics.Stopwatch.GetElapsedTime(started) > CatchUpLimit)
            {
                // Not watching yet (first use, or resyncing after a compaction), or the stream lags: read it all.
                var range = await _client.RangeAsync(new RangeRequest { Key = _layout.PrefixKey, RangeEnd = _layout.PrefixEnd }, ct).ConfigureAwait(false);
                return EtcdView.Read(_layout, range.Header.Revision, range.Kvs).Snapshot();
            }

            var probe = await _client.RangeAsync(
                new RangeRequest { Key = _layout.PrefixKey, RangeEnd = _layout.PrefixEnd, KeysOnly = true, MinModRevision = view.Revision + 1 }, ct).ConfigureAwait(false);
            if (probe.Kvs.Count == 0 && probe.Count == view.Keys.Count)
            {
                return view.Snapshot().At(probe.Header.Revision);
            }

            // Puts after the view's revision (or deletes: fewer keys) the stream has not delivered yet.
            await Task.WhenAny(changed, Task.Delay(TimeSpan.FromMilliseconds(200), ct)).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
        }
    }

    private void EnsureWatcher()
    {
        if (Volatile.Read(ref _watcher) is null && !_stopping.IsCancellationRequested)
        {
            lock (_viewGate)
            {
                _watcher ??= Task.Run(() => WatchLoopAsync(_stopping.Token));
            }
        }
    }

    /// <summary>
    /// A new view: after a full read (<paramref name="changes"/> null) the history starts again at its revision, after a
    /// watch answer the answer's changes join it. Every waiter wakes.
    /// </summary>
    private void Publish(EtcdView? view, List<StoreChange>? changes = null)
    {
        TaskCompletionSource signal;
        lock (_viewGate)
        {
            _view = view;
            if (view is null || changes is null)
            {
                _history.Clear();
                _historyFrom = view?.Revision ?? long.MaxValue;
            }
            else
            {
                _history.AddRange(changes);
                if (_history.Count > HistoryLimit)
                {
                    var dropped = _history.Count - HistoryLimit;
                    _historyFrom = _history[dropped - 1].Revision;
                    _history.RemoveRange(0, dropped);
                }
            }

            signal = _viewChanged;
            _viewChanged = NewSignal();
        }

        signal.TrySetResult();
    }

    /// <summary>
    /// Keeps the view: a full read, then one watch stream from the revision after it whose events are applied as they
    /// come. A dropped stream resumes from the view's revision (on the next member); a compacted history means a full
    /// read again. Only this loop writes the view.
    /// </summary>
    private async Task WatchLoopAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        EtcdView? view = null;
        while (!ct.IsCancellationRequested)
        {
            Uri? endpoint = null;
            try
            {
                if (view is null)
                {
                    var range = await _client.RangeAsync(new RangeRequest { Key = _layout.PrefixKey, RangeEnd = _layout.PrefixEnd }, ct).ConfigureAwait(false);
                    view = EtcdView.Read(_layout, range.Header.Revision, range.Kvs);
                    Publish(view);
                }

                var (call, member) = _client.OpenWatch(ct);
                endpoint = member;
                using (call)
                {
                    await call.RequestStream.WriteAsync(
                        new WatchRequest { CreateRequest = new WatchCreateRequest { Key = _layout.PrefixKey, RangeEnd = _layout.PrefixEnd, StartRevision = view.Revision + 1 } },
                        ct).ConfigureAwait(false);
                    while (await call.ResponseStream.MoveNext(ct).ConfigureAwait(false))
                    {
                        var answer = call.ResponseStream.Current;
                        backoff = TimeSpan.FromMilliseconds(100);
                        if (answer.Created)
                        {
                            SetStreaming(true);
                        }

                        if (answer.CompactRevision > 0)
                        {
                            LogCompacted(view.Revision, answer.CompactRevision);
                            view = null;
                            Publish(null);
                            break;
                        }

                        if (answer.Canceled)
                        {
                            LogWatchDropped(member.Authority, answer.CancelReason ?? "canceled");
                            break;
                        }

                        if (answer.Events.Count > 0)
                        {
                            view = view.Apply(answer.Events);
                            Publish(view, Describe(answer.Events));
                        }
                    }
                }

                SetStreaming(false);
                if (view is not null)
                {
                    _client.Demote(member);
                    await Task.Delay(TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Whatever went wrong, the loop goes on (readers fall back to full reads meanwhile): never a silent stale view.
                SetStreaming(false);
                if (ct.IsCancellationRequested)
                {
                    return;
                }

                LogWatchDropped(endpoint?.Authority ?? _client.Describe, e is RpcException r ? r.Status.Detail : e.Message);
                if (endpoint is not null)
                {
                    _client.Demote(endpoint);
                }

                try
                {
                    await Task.Delay(backoff, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    /// <summary>
    /// Whether the view's stream is open: while it is not (a member gone, etcd down), waiters use streams of their
    /// own, whose failures say the store is unavailable, instead of sleeping on a view that no longer moves.
    /// </summary>
    private void SetStreaming(bool streaming)
    {
        TaskCompletionSource signal;
        lock (_viewGate)
        {
            if (_streaming == streaming)
            {
                return;
            }

            _streaming = streaming;
            signal = _viewChanged;
            _viewChanged = NewSignal();
        }

        signal.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // ---- writing -----------------------------------------------------------------------------------------

    /// <summary>Thrown inside the commit pipeline when another writer committed between our read and our commit.</summary>
    private sealed class CommitRaceException : Exception;

    private async Task<T> MutateAsync<T>(
        Func<ClusterState, (ClusterState State, T Result)> transition, Func<T, ClusterNode>? registers, CancellationToken ct, Func<T, IEnumerable<RequestOp>>? extra = null)
    {
        // One writer per instance: races are then only between daemons, so few commits need a second try.
        await _writeLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await _commitRetry.ExecuteAsync(
                async token =>
                {
                    var snapshot = await CurrentAsync(token).ConfigureAwait(false);
                    var (next, result) = transition(snapshot.Full);
                    var ops = Diff(snapshot, next);
                    if (extra is not null && !ReferenceEquals(next, snapshot.Full))
                    {
                        ops.AddRange(extra(result));
                    }

                    var node = registers?.Invoke(result);
                    if (node is not null)
                    {
                        var lease = await EnsureLeaseAsync(token).ConfigureAwait(false);
                        ops.Add(new RequestOp { RequestPut = AlivePut(node.Name, node.AdvertiseAddress, lease) });
                    }

                    if (ops.Count == 0)
                    {
                        return result; // nothing to change: the (linearizable) read itself is the linearization point
                    }

                    var stamp = Guid.NewGuid().ToString("N");
                    var fenceKey = _layout.Key(_prefix + EtcdLayout.FenceName);
                    ops.Add(new RequestOp { RequestPut = new PutRequest { Key = fenceKey, Value = Google.Protobuf.ByteString.CopyFromUtf8(stamp) } });
                    var txn = new TxnRequest();
                    txn.Compare.Add(new Compare { Key = fenceKey, Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = snapshot.FenceModRevision });
                    txn.Success.AddRange(ops);
                    txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = fenceKey } });

                    TxnResponse answer;
                    try
                    {
                        answer = await _client.TxnAsync(txn, token).ConfigureAwait(false);
                    }
                    catch (EtcdException e) when (node is not null && e.Code == EtcdException.NotFound)
                    {
                        Interlocked.Exchange(ref _leaseId, 0); // "requested lease not found": expired while etcd was away
                        throw new CommitRaceException();
                    }

                    if (answer.Succeeded)
                    {
                        return result;
                    }

                    // A transport retry may have re-sent a transaction whose first copy committed (its answer was lost).
                    var fenceNow = answer.Responses.FirstOrDefault()?.ResponseRange?.Kvs.FirstOrDefault();
                    if (fenceNow?.Value.ToStringUtf8() == stamp)
                    {
                        return result;
                    }

                    throw new CommitRaceException();
                },
                ct).ConfigureAwait(false);
        }
        catch (EtcdException e)
        {
            throw Refused(e);
        }
        catch (CommitRaceException)
        {
            throw new ConflictException($"the cluster state kept changing under this request ({_options.MaxCommitAttempts} attempts lost a race with other writers); retry it");
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private List<RequestOp> Diff(EtcdSnapshot snapshot, ClusterState next)
    {
        // Objects the transition did not touch are the very instances decoded from etcd: they are neither
        // re-serialized nor re-written (so a field this version does not know survives other daemons' writes).
        var desired = new HashSet<string>(StringComparer.Ordinal);
        var ops = new List<RequestOp>();
        void Want(string key, object value)
        {
            desired.Add(key);
            if (snapshot.Decoded.Contains(value))
            {
                return;
            }

            var json = JsonSerializer.Serialize(value, value.GetType(), MeshJson.Options);
            if (!snapshot.Objects.TryGetValue(key, out var old) || old != json)
            {
                ops.Add(new RequestOp { RequestPut = new PutRequest { Key = _layout.Key(key), Value = Google.Protobuf.ByteString.CopyFromUtf8(json) } });
            }
        }

        foreach (var n in next.Networks.Where(n => !ClusterState.Empty.Networks.Contains(n)))
        {
            Want(_prefix + EtcdLayout.NetworksDir + n.Name, n);
        }

        foreach (var n in next.Nodes)
        {
            Want(_prefix + EtcdLayout.NodesDir + n.Name, n);
        }

        foreach (var s in next.Services)
        {
            Want(_prefix + EtcdLayout.ServicesDir + s.Name, s);
        }

        foreach (var t in next.Tasks)
        {
            Want(_prefix + EtcdLayout.TasksDir + t.Service + "/" + t.Name, t);
        }

        var gone = snapshot.Objects.Keys.Where(k => !desired.Contains(k)).ToHashSet(StringComparer.Ordinal);
        // A removed service takes its tasks along: one range delete of tasks/<service>/, not one op per task.
        foreach (var service in gone.Where(k => k.StartsWith(_prefix + EtcdLayout.ServicesDir, StringComparison.Ordinal)).ToArray())
        {
            var taskDir = _prefix + EtcdLayout.TasksDir + service[(_prefix.Length + EtcdLayout.ServicesDir.Length)..] + "/";
            var tasks = snapshot.Objects.Keys.Where(k => k.StartsWith(taskDir, StringComparison.Ordinal)).ToArray();
            if (tasks.Length > 0 && tasks.All(gone.Contains))
            {
                gone.ExceptWith(tasks);
                ops.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = _layout.Key(taskDir), RangeEnd = EtcdLayout.RangeEnd(taskDir) } });
            }
        }

        foreach (var key in gone.Order(StringComparer.Ordinal))
        {
            ops.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = _layout.Key(key) } });
        }

        return ops;
    }

    // ---- liveness ----------------------------------------------------------------------------------------

    private PutRequest AlivePut(string node, string advertise, long lease) =>
        new() { Key = _layout.Key(_prefix + EtcdLayout.AliveDir + node), Value = Google.Protobuf.ByteString.CopyFromUtf8(advertise), Lease = lease };

    private async Task<long> EnsureLeaseAsync(CancellationToken ct)
    {
        var id = Interlocked.Read(ref _leaseId);
        if (id != 0)
        {
            return id;
        }

        await _leaseLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            id = Interlocked.Read(ref _leaseId);
            if (id != 0)
            {
                return id;
            }

            var ttl = (long)Math.Max(Math.Ceiling(_options.LeaseTtl.TotalSeconds), 1);
            var grant = await _client.LeaseGrantAsync(ttl, ct).ConfigureAwait(false);
            if (grant.ID == 0 || !string.IsNullOrEmpty(grant.Error))
            {
                throw new StoreUnavailableException($"etcd granted no lease: {grant.Error}");
            }

            _grantedTtl = TimeSpan.FromSeconds(grant.TTL > 0 ? grant.TTL : ttl);
            Interlocked.Exchange(ref _leaseId, grant.ID);
            LogLeaseGranted(grant.ID, _grantedTtl.TotalSeconds);
            _keepAlive ??= Task.Run(() => KeepAliveLoopAsync(_stopping.Token));
            return grant.ID;
        }
        finally
        {
            _leaseLock.Release();
        }
    }

    /// <summary>
    /// One keep-alive stream, a request every third of the TTL and its answer; a stream that fails or does not answer
    /// within the request timeout is reopened (on the next member). TTL 0 in an answer: the lease is gone (etcd was
    /// unreachable for longer than the TTL), so a new one is taken and this node announced alive again.
    /// </summary>
    private async Task KeepAliveLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Uri? endpoint = null;
            try
            {
                var (call, member) = _client.OpenKeepAlive(ct);
                endpoint = member;
                using (call)
                {
                    while (!ct.IsCancellationRequested)
                    {
                        var id = Interlocked.Read(ref _leaseId);
                        if (id != 0)
                        {
                            using var answerTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                            answerTimeout.CancelAfter(_options.RequestTimeout);
                            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }, answerTimeout.Token).ConfigureAwait(false);
                            if (!await call.ResponseStream.MoveNext(answerTimeout.Token).ConfigureAwait(false))
                            {
                                throw new IOException("the keep-alive stream ended");
                            }

                            if (call.ResponseStream.Current.TTL <= 0)
                            {
                                LogLeaseLost(id);
                                Interlocked.CompareExchange(ref _leaseId, 0, id);
                                await ReannounceAsync(ct).ConfigureAwait(false);
                                continue;
                            }
                        }

                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(_grantedTtl.TotalMilliseconds / 3, 200)), ct).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (ct.IsCancellationRequested)
                {
                    return;
                }

                LogKeepAliveFailed(e is RpcException r ? r.Status.Detail : e.Message);
                if (endpoint is not null)
                {
                    _client.Demote(endpoint);
                }

                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task ReannounceAsync(CancellationToken ct)
    {
        KeyValuePair<string, string>[] nodes;
        lock (_ownNodes)
        {
            nodes = [.. _ownNodes];
        }

        var lease = await EnsureLeaseAsync(ct).ConfigureAwait(false);
        foreach (var (node, advertise) in nodes)
        {
            await _client.PutAsync(AlivePut(node, advertise, lease), ct).ConfigureAwait(false);
        }
    }

    /// <summary>Stops keeping the lease alive without revoking it: like a crash, the nodes' tasks leave after the TTL.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        Task? watcher;
        lock (_viewGate)
        {
            watcher = _watcher;
            _watcher = Task.CompletedTask; // no new watcher after disposal
        }

        foreach (var loop in new[] { _keepAlive, watcher })
        {
            if (loop is not null)
            {
                await loop.ConfigureAwait(false);
            }
        }

        _client.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    [LoggerMessage(Level = LogLevel.Information, Message = "etcd lease {Lease:x} granted (TTL {Ttl} s)")]
    private partial void LogLeaseGranted(long lease, double ttl);

    [LoggerMessage(Level = LogLevel.Warning, Message = "etcd lease {Lease:x} expired: re-announcing this node's liveness on a new lease")]
    private partial void LogLeaseLost(long lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "etcd lease keep-alive failed: {Reason}")]
    private partial void LogKeepAliveFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "etcd watch stream from {Endpoint} dropped ({Reason}); resuming")]
    private partial void LogWatchDropped(string endpoint, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "etcd history after revision {After} was compacted (at {Compacted}): resync")]
    private partial void LogCompacted(long after, long compacted);
}
