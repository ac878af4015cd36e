using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Polly;
using Polly.Retry;

using Mesh.Discovery.Store.Etcd.Gateway;

namespace Mesh.Discovery.Store.Etcd;

/// <summary>etcd answered with an error that retrying elsewhere will not fix (bad request, compacted, lease not found...).</summary>
internal sealed class EtcdException(int code, string message) : Exception(message)
{
    public const int NotFound = 5;
    public const int OutOfRange = 11;

    public int Code { get; } = code;
}

/// <summary>One member could not be reached or could not serve (no leader, timeout): try another one.</summary>
internal sealed class EtcdUnreachableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A small client for etcd's v3 JSON gateway: unary calls fail over across the listed members (the last
/// member that answered is tried first) and whole rounds are retried with exponential backoff and jitter
/// (Polly). When no member answers, callers get <see cref="StoreUnavailableException"/>.
/// </summary>
internal sealed class EtcdClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly IReadOnlyList<Uri> _endpoints;
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

        _endpoints = options.Endpoints;
        _requestTimeout = options.RequestTimeout;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            UseProxy = false,
            SslOptions = options.Tls?.ToSslOptions() ?? new(),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
            DefaultRequestVersion = HttpVersion.Version11,
        };
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

    public IReadOnlyList<Uri> Endpoints => _endpoints;

    public string Describe => string.Join(",", _endpoints.Select(e => e.Authority));

    public Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken ct) => CallAsync<RangeResponse>("v3/kv/range", request, ct);

    public Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken ct) => CallAsync<TxnResponse>("v3/kv/txn", request, ct);

    public Task<RangeResponse> PutAsync(PutRequest request, CancellationToken ct) => CallAsync<RangeResponse>("v3/kv/put", request, ct);

    public Task<RangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CancellationToken ct) => CallAsync<RangeResponse>("v3/kv/deleterange", request, ct);

    public Task<RangeResponse> CompactAsync(long revision, CancellationToken ct) =>
        CallAsync<RangeResponse>("v3/kv/compaction", new CompactionRequest { Revision = revision, Physical = true }, ct);

    public Task<StatusResponse> StatusAsync(CancellationToken ct) => CallAsync<StatusResponse>("v3/maintenance/status", new { }, ct);

    public Task<LeaseGrantResponse> LeaseGrantAsync(long ttlSeconds, CancellationToken ct) =>
        CallAsync<LeaseGrantResponse>("v3/lease/grant", new LeaseGrantRequest { Ttl = ttlSeconds }, ct);

    public Task<RangeResponse> LeaseRevokeAsync(long id, CancellationToken ct) => CallAsync<RangeResponse>("v3/lease/revoke", new LeaseIdRequest { Id = id }, ct);

    /// <summary>One keep-alive: the gateway maps the bidirectional stream to one request, one answer. TTL 0 = the lease is gone.</summary>
    public async Task<LeaseKeepAliveResponse> LeaseKeepAliveAsync(long id, CancellationToken ct)
    {
        var envelope = await CallAsync<StreamEnvelope<LeaseKeepAliveResponse>>("v3/lease/keepalive", new LeaseIdRequest { Id = id }, ct).ConfigureAwait(false);
        if (envelope.Error is { } error)
        {
            throw Classify(HttpStatusCode.OK, error);
        }

        return envelope.Result ?? new LeaseKeepAliveResponse();
    }

    /// <summary>Opens a watch stream on the preferred member that answers; the caller reads newline-delimited JSON from it.</summary>
    public async Task<(HttpResponseMessage Response, Uri Endpoint)> OpenWatchAsync(WatchRequest request, CancellationToken ct)
    {
        try
        {
            return await _transportRetry.ExecuteAsync(
                async token => await OverMembersAsync(async (endpoint, t) => (await SendAsync(endpoint, "v3/watch", request, streaming: true, t).ConfigureAwait(false), endpoint), token).ConfigureAwait(false),
                ct).ConfigureAwait(false);
        }
        catch (EtcdUnreachableException e)
        {
            throw Unavailable(e);
        }
    }

    /// <summary>The member that served the watch went away mid-stream: prefer the next one from now on.</summary>
    public void Demote(Uri endpoint)
    {
        var index = IndexOf(endpoint);
        if (index >= 0)
        {
            Interlocked.CompareExchange(ref _preferred, (index + 1) % _endpoints.Count, index);
        }
    }

    public async Task<T> CallAsync<T>(string path, object request, CancellationToken ct)
    {
        try
        {
            return await _transportRetry.ExecuteAsync(async token => await OverMembersAsync((endpoint, t) => UnaryAsync<T>(endpoint, path, request, t), token).ConfigureAwait(false), ct)
                .ConfigureAwait(false);
        }
        catch (EtcdUnreachableException e)
        {
            throw Unavailable(e);
        }
    }

    private StoreUnavailableException Unavailable(EtcdUnreachableException e) =>
        new($"etcd is unreachable ({_rounds} rounds over {Describe}): {e.Message}", e);

    private async ValueTask<T> OverMembersAsync<T>(Func<Uri, CancellationToken, Task<T>> call, CancellationToken ct)
    {
        var start = Volatile.Read(ref _preferred);
        var errors = new List<string>();
        for (var i = 0; i < _endpoints.Count; i++)
        {
            var index = (start + i) % _endpoints.Count;
            try
            {
                var result = await call(_endpoints[index], ct).ConfigureAwait(false);
                if (index != start)
                {
                    Interlocked.CompareExchange(ref _preferred, index, start);
                }

                return result;
            }
            catch (EtcdUnreachableException e)
            {
                errors.Add($"{_endpoints[index].Authority}: {e.Message}");
            }
        }

        throw new EtcdUnreachableException(string.Join("; ", errors));
    }

    private async Task<T> UnaryAsync<T>(Uri endpoint, string path, object request, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_requestTimeout);
        HttpResponseMessage sent;
        try
        {
            sent = await SendAsync(endpoint, path, request, streaming: false, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new EtcdUnreachableException($"no answer to {path} within {_requestTimeout.TotalSeconds:0.#} s", e);
        }

        using var response = sent;
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            throw new EtcdUnreachableException($"answer to {path} cut short: {e.Message}", e);
        }

        if (!response.IsSuccessStatusCode)
        {
            GatewayError? error = null;
            try
            {
                error = JsonSerializer.Deserialize<GatewayError>(body, EtcdJson.Options);
            }
            catch (JsonException)
            {
                // not the gateway's error body (a proxy?): classify by status alone
            }

            throw Classify(response.StatusCode, error ?? new GatewayError { Message = $"{(int)response.StatusCode} {response.ReasonPhrase}" });
        }

        try
        {
            return JsonSerializer.Deserialize<T>(body, EtcdJson.Options) ?? throw new EtcdUnreachableException($"empty answer to {path}");
        }
        catch (JsonException e)
        {
            throw new EtcdUnreachableException($"unreadable answer to {path}: {e.Message}", e);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(Uri endpoint, string path, object request, bool streaming, CancellationToken ct)
    {
        try
        {
            var content = JsonContent.Create(request, request.GetType(), options: EtcdJson.Options);
            using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoint, path)) { Content = content };
            var response = await _http.SendAsync(message, streaming ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead, ct)
                .ConfigureAwait(false);
            if (streaming && !response.IsSuccessStatusCode)
            {
                using (response)
                {
                    throw new EtcdUnreachableException($"{path} answered {(int)response.StatusCode} {response.ReasonPhrase}");
                }
            }

            return response;
        }
        catch (HttpRequestException e)
        {
            throw new EtcdUnreachableException(e.Message, e);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new EtcdUnreachableException($"could not connect: {e.Message}", e); // SocketsHttpHandler.ConnectTimeout
        }
    }

    internal static Exception Classify(HttpStatusCode status, GatewayError error)
    {
        var message = error.Message ?? error.Error ?? status.ToString();
        // gRPC 14 UNAVAILABLE (no leader, member stopping), 4 DEADLINE_EXCEEDED (request timed out), 10 ABORTED (leader changed)
        return error.Code is 14 or 4 or 10 || status is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout
            ? new EtcdUnreachableException(message)
            : new EtcdException(error.Code, message);
    }

    private int IndexOf(Uri endpoint)
    {
        for (var i = 0; i < _endpoints.Count; i++)
        {
            if (_endpoints[i] == endpoint)
            {
                return i;
            }
        }

        return -1;
    }

    public void Dispose() => _http.Dispose();
}
