using System.Net;
using Etcdserverpb;
using Grpc.Core;
using Grpc.Net.Client;
using Polly;
using Polly.Retry;

namespace Mesh.Discovery.Store.Etcd;

/// <summary>etcd answered with an error that retrying elsewhere will not fix (bad request, compacted, lease not found...): its gRPC status code.</summary>
internal sealed class EtcdException(int code, string message) : Exception(message)
{
    public const int NotFound = (int)StatusCode.NotFound;

    public int Code { get; } = code;
}

/// <summary>One member could not be reached or could not serve (no leader, timeout): try another one.</summary>
internal sealed class EtcdUnreachableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// etcd's v3 gRPC API through dotnet-etcd, one HTTP/2 channel per member: unary calls fail over across the listed
/// members (the last member that answered is tried first) and whole rounds are retried with exponential backoff and
/// jitter (Polly); when no member answers, callers get <see cref="StoreUnavailableException"/>. Streams (watch, lease
/// keep-alive) are opened on the preferred member; a stream that breaks demotes it.
/// </summary>
internal sealed class EtcdClient : IDisposable
{
    /// <summary>clientv3's WithRequireLeader: a member cut off from the leader ends the stream instead of going quiet.</summary>
    private static readonly Metadata RequireLeader = new() { { "hasleader", "true" } };

    private readonly Member[] _members;
    private readonly TimeSpan _requestTimeout;
    private readonly ResiliencePipeline _transportRetry;
    private readonly int _rounds;
    private int _preferred;

    public EtcdClient(EtcdStoreOptions options)
    {
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("at least one etcd endpoint is required", nameof(options));
        }

        _requestTimeout = options.RequestTimeout;
        _members = options.Endpoints.Select(endpoint => new Member(endpoint, GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectTimeout = options.ConnectTimeout,
                // A member that vanishes without a FIN (blackholed) ends its streams within a few seconds.
                KeepAlivePingDelay = TimeSpan.FromSeconds(5),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
                EnableMultipleHttp2Connections = true,
                UseProxy = false,
                SslOptions = options.Tls?.ToSslOptions() ?? new(),
            },
            DisposeHttpClient = true,
        }))).ToArray();
        _transportRetry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<EtcdUnreachableException>(),
                MaxRetryAttempts = Math.Max(options.TransportRetries, 1),
                Delay = options.TransportRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .Build();
        _rounds = Math.Max(options.TransportRetries, 1) + 1;
    }

    public string Describe => string.Join(",", _members.Select(m => m.Endpoint.Authority));

    public Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken ct) =>
        CallAsync((m, deadline, t) => m.Etcd.GetAsync(request, null, deadline, t), ct);

    public Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken ct) =>
        CallAsync((m, deadline, t) => m.Etcd.TransactionAsync(request, null, deadline, t), ct);

    public Task<PutResponse> PutAsync(PutRequest request, CancellationToken ct) =>
        CallAsync((m, deadline, t) => m.Etcd.PutAsync(request, null, deadline, t), ct);

    public Task<CompactionResponse> CompactAsync(long revision, CancellationToken ct) =>
        CallAsync((m, deadline, t) => m.Etcd.CompactAsync(new CompactionRequest { Revision = revision, Physical = true }, null, deadline, t), ct);

    public Task<LeaseGrantResponse> LeaseGrantAsync(long ttlSeconds, CancellationToken ct) =>
        CallAsync((m, deadline, t) => m.Etcd.LeaseGrantAsync(new LeaseGrantRequest { TTL = ttlSeconds }, null, deadline, t), ct);

    public Task<LeaseRevokeResponse> LeaseRevokeAsync(long id, CancellationToken ct) =>
        CallAsync((m, deadline, t) => m.Etcd.LeaseRevokeAsync(new LeaseRevokeRequest { ID = id }, null, deadline, t), ct);

    /// <summary>A watch stream on the preferred member (the caller sends its create request and reads).</summary>
    public (AsyncDuplexStreamingCall<WatchRequest, WatchResponse> Call, Uri Endpoint) OpenWatch(CancellationToken ct)
    {
        var member = _members[Volatile.Read(ref _preferred) % _members.Length];
        return (member.Etcd.GetConnection().WatchClient.Watch(RequireLeader, null, ct), member.Endpoint);
    }

    /// <summary>A lease keep-alive stream on the preferred member.</summary>
    public (AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse> Call, Uri Endpoint) OpenKeepAlive(CancellationToken ct)
    {
        var member = _members[Volatile.Read(ref _preferred) % _members.Length];
        return (member.Etcd.GetConnection().LeaseClient.LeaseKeepAlive(RequireLeader, null, ct), member.Endpoint);
    }

    /// <summary>The member that served a stream went away mid-stream: prefer the next one from now on.</summary>
    public void Demote(Uri endpoint)
    {
        var index = Array.FindIndex(_members, m => m.Endpoint == endpoint);
        if (index >= 0 && _members.Length > 1)
        {
            Interlocked.CompareExchange(ref _preferred, (index + 1) % _members.Length, index);
        }
    }

    /// <summary>Whether a failed stream or call is worth trying again elsewhere (transport, no leader, timeout).</summary>
    public static bool IsTransient(RpcException e) =>
        e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Aborted or StatusCode.Internal or StatusCode.Unknown or StatusCode.Cancelled;

    private async Task<T> CallAsync<T>(Func<Member, DateTime, CancellationToken, Task<T>> call, CancellationToken ct)
    {
        try
        {
            return await _transportRetry.ExecuteAsync(async token => await OverMembersAsync(call, token).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (EtcdUnreachableException e)
        {
            throw new StoreUnavailableException($"etcd is unreachable ({_rounds} rounds over {Describe}): {e.Message}", e);
        }
    }

    private async ValueTask<T> OverMembersAsync<T>(Func<Member, DateTime, CancellationToken, Task<T>> call, CancellationToken ct)
    {
        var start = Volatile.Read(ref _preferred);
        var errors = new List<string>();
        for (var i = 0; i < _members.Length; i++)
        {
            var index = (start + i) % _members.Length;
            var member = _members[index];
            try
            {
                var result = await call(member, DateTime.UtcNow + _requestTimeout, ct).ConfigureAwait(false);
                if (index != start)
                {
                    Interlocked.CompareExchange(ref _preferred, index, start);
                }

                return result;
            }
            catch (RpcException e) when (!ct.IsCancellationRequested && IsTransient(e))
            {
                errors.Add($"{member.Endpoint.Authority}: {e.Status.Detail}");
            }
            catch (RpcException e) when (!ct.IsCancellationRequested)
            {
                throw new EtcdException((int)e.StatusCode, e.Status.Detail);
            }
        }

        throw new EtcdUnreachableException(string.Join("; ", errors));
    }

    public void Dispose()
    {
        foreach (var m in _members)
        {
            m.Etcd.Dispose();
            m.Channel.Dispose();
        }
    }

    private sealed class Member(Uri endpoint, GrpcChannel channel)
    {
        public Uri Endpoint { get; } = endpoint;
        public GrpcChannel Channel { get; } = channel;
        public dotnet_etcd.EtcdClient Etcd { get; } = new(channel.CreateCallInvoker());
    }
}
