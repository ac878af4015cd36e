using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using Mesh.Discovery.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Store;

/// <summary>
/// The embedded store as seen from a daemon that joined another one (<c>--join URL</c>): every call is
/// one request to the holder's HTTP API, and the holder's errors come back as the same exception types.
/// The state the holder sends is not trusted: each object is decoded on its own and validated as the API validates
/// a request (<see cref="StoredObjectValidator"/>); one that fails is set aside and the rest is used.
/// </summary>
public sealed class RemoteStore : IClusterStore
{
    private readonly HttpClient _http;
    private readonly StoredObjectValidator _validator;

    /// <summary>How errors name the store: the API as the user gave it (a unix socket's client has only a placeholder base address).</summary>
    private readonly string _where;

    /// <summary>
    /// The objects of the last state fetched, by kind and the SHA-256 of their JSON text. An object the holder sends
    /// again byte for byte is the very object decoded and checked before: the daemon's planning then sees by reference
    /// what did not change (the desired tables are built from what changed) instead of a whole new state each fetch.
    /// Replaced whole per fetch, never changed once published (concurrent fetches only read it).
    /// </summary>
    private Dictionary<(Type Kind, UInt128 Digest), object> _known = [];

    /// <summary>
    /// What the daemon's loops that follow the holder share (the reconciler's two loops, DNS, the L7 entry, health and
    /// readiness probes: each watches, then reads): one long-poll per revision waited past, and one state read at a time
    /// for the reads that can take a state at least that new. One change cost each joined daemon a watch answer and
    /// a whole-state read per loop, and the holder as many, all at the same moment (BENCHMARKS.md "convergence").
    /// </summary>
    private readonly Lock _sharedGate = new();
    private readonly Dictionary<long, Task<WatchResult>> _watches = [];
    private Task<ClusterState>? _sharedRead;
    private ClusterState? _newest;

    /// <param name="endpoint">What errors call the store, e.g. <c>unix:///run/mesh/mesh.sock</c>; default the client's base address.</param>
    public RemoteStore(HttpClient http, ILogger<RemoteStore>? logger = null, StoreMetrics? metrics = null, ReservedPorts? reserved = null, string? endpoint = null)
    {
        _http = http;
        _where = endpoint ?? http.BaseAddress?.ToString() ?? "(no address)";
        _validator = new StoredObjectValidator((ILogger?)logger ?? NullLogger.Instance, metrics ?? StoreMetrics.Standalone(), reserved ?? ReservedPorts.Default, "remote");
    }

    public async Task<ClusterState> GetStateAsync(CancellationToken cancellationToken = default)
    {
        using var document = await SendAsync<JsonDocument>(HttpMethod.Get, "v1/state", null, cancellationToken).ConfigureAwait(false);
        // Each object passed its own checks when it was decoded (now, or in the fetch it is kept from): what is left is
        // the objects against each other.
        var state = _validator.Consistent(Decode(document.RootElement));
        Newest(state);
        return state;
    }

    /// <summary>
    /// The newest state read if it is new enough; else the read in progress, joined; else a read of its own that the
    /// callers after it join. A read that was already under way when this call came may predate the revision asked
    /// for: then one more, whose answer is taken whatever it says (the holder is the judge of its own revision).
    /// </summary>
    public async Task<ClusterState> GetStateAsync(long atLeastRevision, CancellationToken cancellationToken = default)
    {
        for (var reads = 0; ; reads++)
        {
            Task<ClusterState> read;
            var joined = false;
            lock (_sharedGate)
            {
                if (_newest is { } newest && newest.Revision >= atLeastRevision)
                {
                    return newest;
                }

                if (_sharedRead is { IsCompleted: false } inProgress && reads == 0)
                {
                    read = inProgress;
                    joined = true;
                }
                else
                {
                    read = _sharedRead = SharedRead();
                }
            }

            var state = await read.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (state.Revision >= atLeastRevision || !joined)
            {
                return state;
            }
        }
    }

    /// <summary>A read every caller may join: the holder's state now (not a caller's token: each stops waiting on its own).</summary>
    private Task<ClusterState> SharedRead()
    {
        var read = GetStateAsync(CancellationToken.None);
        _ = read.ContinueWith(
            done =>
            {
                _ = done.Exception; // a read nobody waits for any more must not fail unobserved
                lock (_sharedGate)
                {
                    if (ReferenceEquals(_sharedRead, done))
                    {
                        _sharedRead = null; // its result is in _newest, or its error went to its joiners
                    }
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return read;
    }

    private ClusterState Decode(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("revision", out var rev) || !rev.TryGetInt64(out var revision))
        {
            throw new StoreUnavailableException($"store at {_where} sent no cluster state");
        }

        var known = Volatile.Read(ref _known);
        var next = new Dictionary<(Type Kind, UInt128 Digest), object>(known.Count);
        T[] Objects<T>(string property, Func<JsonElement, bool>? skip = null, List<(Type, UInt128)>? keys = null) where T : class
        {
            if (!root.TryGetProperty(property, out var array) || array.ValueKind != JsonValueKind.Array)
            {
                return [];
            }

            var list = new List<T>(array.GetArrayLength());
            var i = 0;
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            foreach (var element in array.EnumerateArray())
            {
                if (skip?.Invoke(element) == true)
                {
                    i++;
                    continue;
                }

                SHA256.HashData(JsonMarshal.GetRawUtf8Value(element), hash);
                var key = (typeof(T), BinaryPrimitives.ReadUInt128LittleEndian(hash));
                var value = known.TryGetValue(key, out var same) ? (T)same : _validator.Decode<T>($"{property}[{i}]", element.GetRawText());
                i++;
                if (value is not null)
                {
                    next.TryAdd(key, value); // only what decoded and passed its checks is ever reused
                    list.Add(value);
                    keys?.Add(key);
                }
            }

            return [.. list];
        }

        // The ingress network is fixed (OverlayNetwork.Ingress), whatever the holder says: validation puts it back first.
        var networks = Objects<OverlayNetwork>("networks", e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out var n) && n.ValueEquals(OverlayNetwork.IngressName));
        var taskKeys = new List<(Type, UInt128)>();
        var decoded = new ClusterState
        {
            Revision = revision,
            Networks = networks,
            Nodes = Objects<ClusterNode>("nodes"),
            Services = Objects<ClusterService>("services"),
            Tasks = Objects<ServiceTask>("tasks", keys: taskKeys),
        };

        // One name string per service and node, not per task. A task given its service's and node's strings is kept in
        // that form: sent again, it needs no new copy (unless its service or node changed, and with it the string).
        var state = decoded.WithSharedNames();
        for (var t = 0; t < state.Tasks.Count; t++)
        {
            if (!ReferenceEquals(state.Tasks[t], decoded.Tasks[t]))
            {
                next[taskKeys[t]] = state.Tasks[t];
            }
        }

        Volatile.Write(ref _known, next);
        return state;
    }

    public Task<OverlayNetwork> CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync<OverlayNetwork>(HttpMethod.Post, "v1/networks", spec, cancellationToken);

    public async Task<ClusterNode> RegisterNodeAsync(NodeSpec spec, CancellationToken cancellationToken = default)
    {
        // The daemon programs its sandbox with the answer: it gets the same scrutiny as the state.
        var node = await SendAsync<ClusterNode>(HttpMethod.Post, "v1/nodes", spec, cancellationToken).ConfigureAwait(false);
        return _validator.Check(node, "nodes/" + node.Name)
            ? node
            : throw new StoreUnavailableException($"store at {_where} answered the registration with an invalid node");
    }

    public Task RemoveNodeAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/nodes/{Uri.EscapeDataString(name)}", null, cancellationToken);

    public Task<ClusterService> CreateServiceAsync(ServiceSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync<ClusterService>(HttpMethod.Post, "v1/services", spec, cancellationToken);

    public Task<ClusterService> UpdateServiceAsync(string name, ServiceUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync<ClusterService>(HttpMethod.Patch, $"v1/services/{Uri.EscapeDataString(name)}", update, cancellationToken);

    public Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/services/{Uri.EscapeDataString(name)}", null, cancellationToken);

    public Task<ServiceTask> AddTaskAsync(TaskSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync<ServiceTask>(HttpMethod.Post, "v1/tasks", spec, cancellationToken);

    public Task RemoveTaskAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/tasks/{Uri.EscapeDataString(name)}", null, cancellationToken);

    public Task<ServiceTask> UpdateTaskAsync(string name, TaskUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync<ServiceTask>(HttpMethod.Patch, $"v1/tasks/{Uri.EscapeDataString(name)}", update, cancellationToken);

    /// <summary>
    /// Joins the long-poll in progress for the same revision, if any (its answer is the same for every caller): one
    /// request to the holder however many of the daemon's loops wait past that revision. A caller whose timeout ends
    /// before the shared poll's gets "no change" at its own deadline; one whose timeout is longer polls again.
    /// </summary>
    public async Task<WatchResult> WatchAsync(long afterRevision, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var left = TimeSpan.FromSeconds((double)(deadline - Stopwatch.GetTimestamp()) / Stopwatch.Frequency);
            if (left <= TimeSpan.Zero)
            {
                return new WatchResult(afterRevision, [], Resync: false);
            }

            Task<WatchResult> poll;
            lock (_sharedGate)
            {
                if (!_watches.TryGetValue(afterRevision, out poll!) || poll.IsCompleted)
                {
                    poll = _watches[afterRevision] = SharedWatch(afterRevision, left);
                }
            }

            WatchResult result;
            try
            {
                result = await poll.WaitAsync(left, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return new WatchResult(afterRevision, [], Resync: false);
            }

            if (result.Revision != afterRevision || result.Resync)
            {
                return result;
            }
        }
    }

    /// <summary>A long-poll every caller waiting past <paramref name="afterRevision"/> may join; it ends at its timeout.</summary>
    private Task<WatchResult> SharedWatch(long afterRevision, TimeSpan timeout)
    {
        var poll = WatchWithStateAsync(afterRevision, timeout);
        _ = poll.ContinueWith(
            done =>
            {
                _ = done.Exception;
                lock (_sharedGate)
                {
                    if (_watches.TryGetValue(afterRevision, out var current) && ReferenceEquals(current, done))
                    {
                        _watches.Remove(afterRevision);
                    }
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return poll;
    }

    /// <summary>
    /// The holder's watch, asked to answer a change with the state after it (<see cref="WatchAnswer"/>): the loops
    /// waiting then take that state (<see cref="GetStateAsync(long, CancellationToken)"/>) without a read of their own.
    /// The state is decoded and checked object by object like any read; a holder that sends none (no change, or an
    /// older holder that ignores the parameter) leaves the loops to read.
    /// </summary>
    private async Task<WatchResult> WatchWithStateAsync(long afterRevision, TimeSpan timeout)
    {
        // Not a caller's token: the poll is every joiner's, and ends at its timeout (the holder answers then).
        using var document = await SendAsync<JsonDocument>(HttpMethod.Get, FormattableString.Invariant($"v1/watch?after={afterRevision}&timeoutMs={(long)timeout.TotalMilliseconds}&state=1"), null, CancellationToken.None).ConfigureAwait(false);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("revision", out var rev) || !rev.TryGetInt64(out var revision)
            || !root.TryGetProperty("resync", out var resync) || resync.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            throw new StoreUnavailableException($"store at {_where} sent no watch answer");
        }

        IReadOnlyList<StoreChange> changes;
        try
        {
            changes = root.TryGetProperty("changes", out var list) ? list.Deserialize<StoreChange[]>(MeshJson.Options) ?? [] : [];
        }
        catch (JsonException e)
        {
            throw new StoreUnavailableException($"store at {_where} sent an unreadable watch answer: {e.Message}", e);
        }

        if (root.TryGetProperty("state", out var state) && state.ValueKind == JsonValueKind.Object)
        {
            Newest(_validator.Consistent(Decode(state)));
        }

        return new WatchResult(revision, changes, resync.GetBoolean());
    }

    /// <summary>Keeps <paramref name="state"/> as the newest read unless a newer one is kept already.</summary>
    private void Newest(ClusterState state)
    {
        lock (_sharedGate)
        {
            if (_newest is null || state.Revision > _newest.Revision)
            {
                _newest = state;
            }
        }
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: MeshJson.Options);
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (TlsFailure(e) is { } tls)
        {
            // Say what to fix: a refused handshake looks like a dead server unless the message names TLS.
            throw new StoreUnavailableException(
                $"TLS with the store at {_where} failed: {tls} (both ends need certificates of the same cluster CA: --tls-cert, --tls-key, --tls-ca)", e);
        }
        catch (HttpRequestException e)
        {
            // A failed connect comes wrapped as "<why> (host:port)", and for a unix socket host:port is the placeholder
            // mesh:80: say why, after the address the user gave.
            var why = e.HttpRequestError == HttpRequestError.ConnectionError && e.InnerException is { } inner ? inner.Message : e.Message;
            throw new StoreUnavailableException($"store at {_where} is unreachable: {why}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StoreUnavailableException($"store at {_where} did not answer in time", e);
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                if (response.StatusCode == HttpStatusCode.NoContent || typeof(T) == typeof(object))
                {
                    return default!;
                }

                return await response.Content.ReadFromJsonAsync<T>(MeshJson.Options, cancellationToken).ConfigureAwait(false)
                    ?? throw new StoreUnavailableException($"store at {_where} sent an empty answer to {method} {path}");
            }

            ApiError? error = null;
            try
            {
                error = await response.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options, cancellationToken).ConfigureAwait(false);
            }
            catch (JsonException)
            {
                // not one of ours: fall through with the status code
            }

            var message = error?.Error ?? $"{(int)response.StatusCode} {response.ReasonPhrase}";
            throw response.StatusCode switch
            {
                HttpStatusCode.BadRequest => new ValidationException(error?.Field ?? "request", StripField(message, error?.Field)),
                HttpStatusCode.RequestEntityTooLarge => new ValidationException(error?.Field ?? "body", StripField(message, error?.Field)),
                HttpStatusCode.NotFound => new NotFoundException(message),
                HttpStatusCode.Conflict => new ConflictException(message),
                HttpStatusCode.Unauthorized => new StoreUnavailableException($"store at {_where} refused the request (401 Unauthorized): {message} (--api-token-file must hold the holder's token)"),
                _ => new StoreUnavailableException($"store at {_where}: {message}"),
            };
        }
    }

    /// <summary>The messages of a failed request when TLS is what failed (a handshake refused either way, a certificate not trusted).</summary>
    private string? TlsFailure(HttpRequestException e)
    {
        var chain = new List<Exception>();
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            chain.Add(inner);
        }

        var messages = string.Join(": ", chain.Select(x => x.Message).Distinct());
        if (e.HttpRequestError == HttpRequestError.SecureConnectionError || chain.Any(x => x is System.Security.Authentication.AuthenticationException))
        {
            return messages;
        }

        // With TLS 1.3 the server checks our certificate after the handshake has completed on our side: a refusal
        // then shows up as a connection closed before any answer.
        return _http.BaseAddress?.Scheme == Uri.UriSchemeHttps && e.HttpRequestError == HttpRequestError.ResponseEnded
            ? $"the server closed the connection before answering, which over TLS means it refused our client certificate ({messages})"
            : null;
    }

    private static string StripField(string message, string? field) =>
        field is not null && message.StartsWith(field + ": ", StringComparison.Ordinal) ? message[(field.Length + 2)..] : message;
}
