using System.Text.Json;
using Mesh.Discovery.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

using Mesh.Discovery.Store.Etcd.Gateway;

namespace Mesh.Discovery.Store.Etcd;

/// <summary>
/// <see cref="IClusterStore"/> on a real etcd cluster, through etcd's v3 JSON gateway.
/// <para>
/// Layout under <see cref="EtcdStoreOptions.Prefix"/> (default <c>/mesh/</c>), values in <see cref="MeshJson"/>:
/// <c>networks/&lt;name&gt;</c>, <c>nodes/&lt;name&gt;</c>, <c>services/&lt;name&gt;</c>,
/// <c>tasks/&lt;service&gt;/&lt;task&gt;</c> (grouped by service so removing a service is one range delete,
/// whatever its task count: etcd refuses transactions of more than 128 operations by default),
/// <c>alive/&lt;node&gt;</c> (attached to the lease of that node's own daemon, <see cref="EtcdStoreOptions.Node"/>) and
/// <c>revision</c>, the write fence.
/// </para>
/// <para>
/// Every mutation reads the whole prefix (one linearizable range), runs the pure <see cref="StateTransitions"/>
/// function on it, and commits the object puts/deletes plus a new fence value in ONE transaction whose only
/// compare is "the fence's mod revision is what I read". Every mutation rewrites the fence, so the commit
/// succeeds only if no other mutation committed since the read: allocations (VIPs, marks, sandbox and task
/// IPs, published ports) are never handed out twice, however many daemons write. A lost race re-runs the
/// whole read-compute-commit (bounded, with backoff); a request that fails validation changes nothing.
/// </para>
/// <para>
/// Liveness: in the state <see cref="GetStateAsync"/> returns, the tasks of a node without an <c>alive/&lt;node&gt;</c>
/// key are <see cref="TaskState.NodeDown"/>. When a daemon stops keeping its lease alive, etcd deletes the key
/// after the TTL and every reader sees the node's tasks go down (and so out of backends and DNS, which take
/// running tasks only); they are running again when the node registers again. Allocations always see them.
/// </para>
/// <para>
/// Nothing read from etcd is trusted: every object is decoded and validated like an API request
/// (<see cref="StoredObjectValidator"/>); one that fails is set aside with a log line and a count in
/// <c>mesh.store.rejected_objects</c>, and the rest of the state is served and converged as usual.
/// </para>
/// </summary>
public sealed partial class EtcdStore : IClusterStore, IAsyncDisposable, IDisposable
{
    private const string NetworksDir = "networks/";
    private const string NodesDir = "nodes/";
    private const string ServicesDir = "services/";
    private const string TasksDir = "tasks/";
    private const string AliveDir = "alive/";
    private const string FenceName = "revision";

    private readonly EtcdStoreOptions _options;
    private readonly EtcdClient _client;
    private readonly ILogger _logger;
    private readonly string _prefix;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _leaseLock = new(1, 1);
    private readonly ResiliencePipeline _commitRetry;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, string> _ownNodes = new(StringComparer.OrdinalIgnoreCase); // name → advertise address
    private readonly StoredObjectValidator _validator;
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
        _validator = new StoredObjectValidator(_logger, metrics ?? StoreMetrics.Standalone(), options.ReservedPorts, "etcd");
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

    /// <summary>The daemon's <c>--store etcd://h1:2379,h2:2379</c>.</summary>
    public static EtcdStore FromConnectionString(string store, ILogger<EtcdStore>? logger = null, TimeSpan? leaseTtl = null, string prefix = "/mesh/", string? node = null)
    {
        var options = EtcdStoreOptions.Parse(store, prefix) with { Node = node };
        return new EtcdStore(leaseTtl is { } ttl ? options with { LeaseTtl = ttl } : options, logger);
    }

    public EtcdStoreOptions Options => _options;

    /// <summary>The lease this instance keeps its own node (<see cref="EtcdStoreOptions.Node"/>) alive with (0 before it registered).</summary>
    public long LeaseId => Interlocked.Read(ref _leaseId);

    public async Task<ClusterState> GetStateAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var snapshot = await ReadAsync(cancellationToken).ConfigureAwait(false);
            return snapshot.Visible;
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
            node => [new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = EtcdJson.Base64(_prefix + AliveDir + node) } }]).ConfigureAwait(false);
        lock (_ownNodes)
        {
            _ownNodes.Remove(removed);
        }
    }

    public Task<ClusterService> CreateServiceAsync(ServiceSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.CreateService(s, spec, _options.ReservedPorts), null, cancellationToken);

    public Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default) =>
        MutateAsync(s => (StateTransitions.RemoveService(s, name), name), null, cancellationToken);

    public Task<ServiceTask> AddTaskAsync(TaskSpec spec, CancellationToken cancellationToken = default) =>
        MutateAsync(s => StateTransitions.AddTask(s, spec), null, cancellationToken);

    public Task RemoveTaskAsync(string name, CancellationToken cancellationToken = default) =>
        MutateAsync(s => (StateTransitions.RemoveTask(s, name), name), null, cancellationToken);

    /// <summary>
    /// Watches the prefix from <paramref name="afterRevision"/> + 1. Returns the first batch of changes (whole
    /// revisions only), an empty result at <paramref name="afterRevision"/> after <paramref name="timeout"/>, or
    /// <see cref="WatchResult.Resync"/> when etcd compacted that history away (or the revision is from the future:
    /// another cluster). A stream that drops is reopened from the same revision on the next member; when no member
    /// answers, <see cref="StoreUnavailableException"/>. A node's liveness flipping is reported as a change of that node.
    /// </summary>
    public async Task<WatchResult> WatchAsync(long afterRevision, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var request = new WatchRequest
        {
            CreateRequest = new WatchCreateRequest
            {
                Key = EtcdJson.Base64(_prefix),
                RangeEnd = EtcdJson.PrefixEnd(_prefix),
                StartRevision = Math.Max(afterRevision + 1, 1),
            },
        };

        try
        {
            while (true)
            {
                var (response, endpoint) = await _client.OpenWatchAsync(request, deadline.Token).ConfigureAwait(false);
                using (response)
                {
                    try
                    {
                        var result = await ReadWatchAsync(response, afterRevision, deadline.Token).ConfigureAwait(false);
                        if (result is not null)
                        {
                            return result;
                        }
                    }
                    catch (Exception e) when (e is IOException or HttpRequestException or EtcdUnreachableException or JsonException)
                    {
                        LogWatchDropped(endpoint.Authority, e.Message);
                    }
                }

                // The stream ended without an answer (member stopping, connection cut): resume elsewhere, same revision.
                _client.Demote(endpoint);
                await Task.Delay(TimeSpan.FromMilliseconds(50), deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new WatchResult(afterRevision, [], Resync: false);
        }
    }

    private async Task<WatchResult?> ReadWatchAsync(HttpResponseMessage response, long afterRevision, CancellationToken ct)
    {
        using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var reader = new StreamReader(stream);
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            var envelope = JsonSerializer.Deserialize<StreamEnvelope<WatchResponse>>(line, EtcdJson.Options);
            if (envelope?.Error is { } error)
            {
                throw EtcdClient.Classify(System.Net.HttpStatusCode.OK, error) is EtcdUnreachableException unreachable
                    ? unreachable
                    : new StoreUnavailableException($"etcd refused the watch: {error.Message}");
            }

            var answer = envelope?.Result;
            if (answer is null)
            {
                continue;
            }

            var current = answer.Header?.Revision ?? 0;
            if (answer.CompactRevision > 0)
            {
                LogCompacted(afterRevision, answer.CompactRevision);
                return new WatchResult(current, [], Resync: true);
            }

            if (answer.Canceled)
            {
                throw new EtcdUnreachableException($"watch canceled: {answer.CancelReason}");
            }

            if (answer.Created && current > 0 && current < afterRevision)
            {
                return new WatchResult(current, [], Resync: true);
            }

            if (answer.Events is { Count: > 0 } events)
            {
                return new WatchResult(events.Max(e => e.Kv?.ModRevision ?? 0), Describe(events), Resync: false);
            }
        }

        return null;
    }

    private List<StoreChange> Describe(IEnumerable<WatchEvent> events)
    {
        var changes = new List<StoreChange>();
        foreach (var e in events)
        {
            var key = EtcdJson.Text(e.Kv?.Key);
            if (!key.StartsWith(_prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var deleted = e.Type == "DELETE";
            var rest = key[_prefix.Length..];
            StoreChange? change = rest switch
            {
                _ when rest.StartsWith(NetworksDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Network, rest[NetworksDir.Length..], deleted),
                _ when rest.StartsWith(NodesDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Node, rest[NodesDir.Length..], deleted),
                _ when rest.StartsWith(ServicesDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Service, rest[ServicesDir.Length..], deleted),
                _ when rest.StartsWith(TasksDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Task, rest[(rest.LastIndexOf('/') + 1)..], deleted),
                // The node is still registered; its tasks went node-down (or came back up).
                _ when rest.StartsWith(AliveDir, StringComparison.Ordinal) => new(0, StoreObjectKind.Node, rest[AliveDir.Length..], false),
                _ => null,
            };

            if (change is not null)
            {
                change = change with { Revision = e.Kv?.ModRevision ?? 0 };
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

    private sealed record Snapshot(long FenceModRevision, ClusterState Full, ClusterState Visible, Dictionary<string, string> Objects, HashSet<object> Decoded);

    private async Task<Snapshot> ReadAsync(CancellationToken ct)
    {
        var range = await _client.RangeAsync(new RangeRequest { Key = EtcdJson.Base64(_prefix), RangeEnd = EtcdJson.PrefixEnd(_prefix) }, ct).ConfigureAwait(false);
        var networks = new List<(long, OverlayNetwork)>();
        var nodes = new List<(long, ClusterNode)>();
        var services = new List<(long, ClusterService)>();
        var tasks = new List<(long, ServiceTask)>();
        var alive = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var objects = new Dictionary<string, string>(StringComparer.Ordinal);
        long fence = 0;
        foreach (var kv in range.Kvs ?? [])
        {
            var key = EtcdJson.Text(kv.Key);
            var rest = key[_prefix.Length..];
            var value = EtcdJson.Text(kv.Value);
            // Each object is decoded and validated on its own: one that fails is set aside (logged, counted) and
            // left in etcd untouched (it is not in Objects, so no write deletes or rewrites it); the rest converges.
            if (rest == FenceName)
            {
                fence = kv.ModRevision;
            }
            else if (rest.StartsWith(AliveDir, StringComparison.Ordinal))
            {
                alive.Add(rest[AliveDir.Length..]);
            }
            else if (rest.StartsWith(NetworksDir, StringComparison.Ordinal))
            {
                if (_validator.Decode<OverlayNetwork>(key, value, rest[NetworksDir.Length..]) is { } network)
                {
                    networks.Add((kv.CreateRevision, network));
                    objects[key] = value;
                }
            }
            else if (rest.StartsWith(NodesDir, StringComparison.Ordinal))
            {
                if (_validator.Decode<ClusterNode>(key, value, rest[NodesDir.Length..]) is { } node)
                {
                    nodes.Add((kv.CreateRevision, node));
                    objects[key] = value;
                }
            }
            else if (rest.StartsWith(ServicesDir, StringComparison.Ordinal))
            {
                if (_validator.Decode<ClusterService>(key, value, rest[ServicesDir.Length..]) is { } service)
                {
                    services.Add((kv.CreateRevision, service));
                    objects[key] = value;
                }
            }
            else if (rest.StartsWith(TasksDir, StringComparison.Ordinal))
            {
                if (_validator.Decode<ServiceTask>(key, value, rest[TasksDir.Length..]) is { } task)
                {
                    tasks.Add((kv.CreateRevision, task));
                    objects[key] = value;
                }
            }
        }

        static T[] InOrder<T>(List<(long Created, T Item)> items) => items.OrderBy(i => i.Created).Select(i => i.Item).ToArray();
        var full = new ClusterState
        {
            Revision = range.Header?.Revision ?? 0,
            Networks = [.. ClusterState.Empty.Networks, .. InOrder(networks).Where(n => !ClusterState.Empty.Networks.Any(d => d.Name == n.Name))],
            Nodes = InOrder(nodes),
            Services = InOrder(services),
            Tasks = InOrder(tasks),
        };
        // What readers get is also consistent across objects (no two services with one port, mark or address...).
        // Writes still see every valid object, so no allocation is handed out twice.
        var consistent = _validator.Consistent(full);
        var visible = consistent.Tasks.All(t => alive.Contains(t.Node))
            ? consistent
            : consistent with { Tasks = consistent.Tasks.Select(t => alive.Contains(t.Node) ? t : t with { State = TaskState.NodeDown }).ToArray() };
        var decoded = new HashSet<object>(ReferenceEqualityComparer.Instance);
        decoded.UnionWith(full.Networks);
        decoded.UnionWith(full.Nodes);
        decoded.UnionWith(full.Services);
        decoded.UnionWith(full.Tasks);
        return new Snapshot(fence, full, visible, objects, decoded);
    }

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
                    var snapshot = await ReadAsync(token).ConfigureAwait(false);
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
                        return result; // nothing to change: the read itself is the linearization point
                    }

                    var stamp = Guid.NewGuid().ToString("N");
                    ops.Add(new RequestOp { RequestPut = new PutRequest { Key = EtcdJson.Base64(_prefix + FenceName), Value = EtcdJson.Base64(stamp) } });
                    var txn = new TxnRequest
                    {
                        Compare = [new Compare { Key = EtcdJson.Base64(_prefix + FenceName), ModRevision = snapshot.FenceModRevision }],
                        Success = ops,
                        Failure = [new RequestOp { RequestRange = new RangeRequest { Key = EtcdJson.Base64(_prefix + FenceName) } }],
                    };

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
                    var fenceNow = answer.Responses?.FirstOrDefault()?.ResponseRange?.Kvs?.FirstOrDefault();
                    if (EtcdJson.Text(fenceNow?.Value) == stamp)
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

    private List<RequestOp> Diff(Snapshot snapshot, ClusterState next)
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
                ops.Add(new RequestOp { RequestPut = new PutRequest { Key = EtcdJson.Base64(key), Value = EtcdJson.Base64(json) } });
            }
        }

        foreach (var n in next.Networks.Where(n => !ClusterState.Empty.Networks.Contains(n)))
        {
            Want(_prefix + NetworksDir + n.Name, n);
        }

        foreach (var n in next.Nodes)
        {
            Want(_prefix + NodesDir + n.Name, n);
        }

        foreach (var s in next.Services)
        {
            Want(_prefix + ServicesDir + s.Name, s);
        }

        foreach (var t in next.Tasks)
        {
            Want(TaskKey(t), t);
        }

        var gone = snapshot.Objects.Keys.Where(k => !desired.Contains(k)).ToHashSet(StringComparer.Ordinal);
        // A removed service takes its tasks along: one range delete of tasks/<service>/, not one op per task.
        foreach (var service in gone.Where(k => k.StartsWith(_prefix + ServicesDir, StringComparison.Ordinal)).ToArray())
        {
            var taskDir = _prefix + TasksDir + service[(_prefix.Length + ServicesDir.Length)..] + "/";
            var tasks = snapshot.Objects.Keys.Where(k => k.StartsWith(taskDir, StringComparison.Ordinal)).ToArray();
            if (tasks.Length > 0 && tasks.All(gone.Contains))
            {
                gone.ExceptWith(tasks);
                ops.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = EtcdJson.Base64(taskDir), RangeEnd = EtcdJson.PrefixEnd(taskDir) } });
            }
        }

        foreach (var key in gone.Order(StringComparer.Ordinal))
        {
            ops.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = EtcdJson.Base64(key) } });
        }

        return ops;
    }

    private string TaskKey(ServiceTask t) => _prefix + TasksDir + t.Service + "/" + t.Name;

    // ---- liveness ----------------------------------------------------------------------------------------

    private PutRequest AlivePut(string node, string advertise, long lease) =>
        new() { Key = EtcdJson.Base64(_prefix + AliveDir + node), Value = EtcdJson.Base64(advertise), Lease = lease };

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
            if (grant.Id == 0 || !string.IsNullOrEmpty(grant.Error))
            {
                throw new StoreUnavailableException($"etcd granted no lease: {grant.Error}");
            }

            _grantedTtl = TimeSpan.FromSeconds(grant.Ttl > 0 ? grant.Ttl : ttl);
            Interlocked.Exchange(ref _leaseId, grant.Id);
            LogLeaseGranted(grant.Id, _grantedTtl.TotalSeconds);
            _keepAlive ??= Task.Run(() => KeepAliveLoopAsync(_stopping.Token));
            return grant.Id;
        }
        finally
        {
            _leaseLock.Release();
        }
    }

    private async Task KeepAliveLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var interval = TimeSpan.FromMilliseconds(Math.Max(_grantedTtl.TotalMilliseconds / 3, 200));
            try
            {
                await Task.Delay(interval, ct).ConfigureAwait(false);
                var id = Interlocked.Read(ref _leaseId);
                if (id == 0)
                {
                    continue;
                }

                var answer = await _client.LeaseKeepAliveAsync(id, ct).ConfigureAwait(false);
                if (answer.Ttl > 0)
                {
                    continue;
                }

                // The lease expired (etcd was unreachable for longer than the TTL): take a new one and say we are alive again.
                LogLeaseLost(id);
                Interlocked.CompareExchange(ref _leaseId, 0, id);
                await ReannounceAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogKeepAliveFailed(e.Message);
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

        if (_keepAlive is not null)
        {
            await _keepAlive.ConfigureAwait(false);
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
