using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Dns;

/// <summary>Configuration of one embedded DNS server (one per task network namespace).</summary>
public sealed class EmbeddedDnsServerOptions
{
    /// <summary>Identifies the task; passed to the authority in <see cref="DnsClientContext.TaskId"/>.</summary>
    public required string TaskId { get; init; }
    /// <summary>Opaque value passed to the authority in <see cref="DnsClientContext.State"/> (e.g. the task object).</summary>
    public object? State { get; init; }
    /// <summary>A bound UDP socket (see <see cref="NetworkNamespaceSockets.CreateUdp"/>). Null: no UDP.</summary>
    public Socket? UdpSocket { get; init; }
    /// <summary>A bound TCP socket, listening or not (see <see cref="NetworkNamespaceSockets.CreateTcpListener"/>). Null: no TCP.</summary>
    public Socket? TcpListener { get; init; }
    /// <summary>Dispose the given sockets when the server stops (default true).</summary>
    public bool OwnsSockets { get; init; } = true;

    /// <summary>Servers for names the authority does not own, tried in order (see <see cref="ResolvConf.ReadUpstreams"/>). Empty: SERVFAIL.</summary>
    public IReadOnlyList<IPEndPoint> Upstreams { get; init; } = [];
    /// <summary>
    /// Addresses of the namespace this server answers in (the task's own IPs). An upstream at one of them, at
    /// 127.0.0.11, or at one of our own sockets is the resolver itself: it is left out, with a warning.
    /// </summary>
    public IReadOnlyList<IPAddress> OwnAddresses { get; init; } = [];
    /// <summary>Timeout of one exchange with one upstream server (default 2 s).</summary>
    public TimeSpan UpstreamTryTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Bound on the whole forwarding of one query, across retries and servers (default 4 s, under dig's/glibc's 5 s).</summary>
    public TimeSpan UpstreamTotalTimeout { get; init; } = TimeSpan.FromSeconds(4);
    /// <summary>Creates the sockets used to talk upstream (default: plain sockets in the daemon's own namespace).</summary>
    public DnsSocketFactory? UpstreamSocketFactory { get; init; }
    /// <summary>
    /// Limits warnings about failed forwarding to one per upstream set per interval (with the count held back). Give
    /// every server on a node the same instance so they share the budget. Null: one of this server's own, 10 s.
    /// </summary>
    public LogRateLimiter? UpstreamFailureLog { get; init; }
    /// <summary>Forwarded queries in flight before new ones get SERVFAIL (default 256).</summary>
    public int MaxConcurrentForwards { get; init; } = 256;

    /// <summary>Largest UDP reply we send, whatever larger size the client advertises (default 4096; 512 without EDNS).</summary>
    public ushort MaxUdpPayloadSize { get; init; } = 4096;
    /// <summary>Receive loops on the UDP socket, each on its own thread (default 1).</summary>
    public int UdpReceiveLoops { get; init; } = 1;
    /// <summary>A TCP connection with no complete query for this long is closed (default 10 s, RFC 7766 §6.2.3).</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Concurrent TCP connections; further ones are closed on accept (default 64).</summary>
    public int MaxTcpConnections { get; init; } = 64;
}

/// <summary>
/// The embedded resolver of one task (what containers reach at 127.0.0.11): answers names the
/// <see cref="IDnsAuthority"/> owns, forwards the rest upstream, over UDP and TCP on sockets it is given.
/// Usage: <c>var s = new EmbeddedDnsServer(options, authority, logger); s.Start(); ... await s.DisposeAsync();</c>
/// </summary>
public sealed partial class EmbeddedDnsServer : IAsyncDisposable
{
    private readonly EmbeddedDnsServerOptions _options;
    private readonly DnsRequestHandler _handler;
    private readonly DnsMetrics _metrics;
    private readonly ILogger _logger;
    private readonly IReadOnlyList<IPEndPoint> _upstreams;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly HashSet<Socket> _connections = [];
    private int _started;

    public EmbeddedDnsServer(EmbeddedDnsServerOptions options, IDnsAuthority authority, ILogger<EmbeddedDnsServer>? logger = null, DnsMetrics? metrics = null)
        : this(options, authority, (ILogger?)logger, metrics, forwarder: null)
    {
    }

    internal EmbeddedDnsServer(EmbeddedDnsServerOptions options, IDnsAuthority authority, ILogger? logger, DnsMetrics? metrics, IDnsForwarder? forwarder)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(authority);
        if (options.UdpSocket is null && options.TcpListener is null) throw new ArgumentException("give at least one socket", nameof(options));
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics ?? DnsMetrics.Shared;
        _upstreams = WithoutSelf(options, _logger);
        forwarder ??= new DnsForwarder(_upstreams, options.UpstreamTryTimeout, options.UpstreamTotalTimeout, options.UpstreamSocketFactory, _logger);
        _handler = new DnsRequestHandler(authority, forwarder, _metrics, _logger, options.MaxUdpPayloadSize, options.MaxConcurrentForwards,
            options.UpstreamFailureLog);
    }

    /// <summary>The upstreams actually forwarded to (the configured ones less any that are this resolver itself).</summary>
    public IReadOnlyList<IPEndPoint> Upstreams => _upstreams;

    private static IReadOnlyList<IPEndPoint> WithoutSelf(EmbeddedDnsServerOptions options, ILogger logger)
    {
        IPEndPoint?[] listening = [options.UdpSocket?.LocalEndPoint as IPEndPoint, options.TcpListener?.LocalEndPoint as IPEndPoint];
        var kept = new List<IPEndPoint>(options.Upstreams.Count);
        foreach (var upstream in options.Upstreams)
        {
            if (DnsUpstreamGuard.WhySelf(upstream, options.OwnAddresses, listening) is { } why)
                Log.UpstreamIsSelf(logger, options.TaskId, upstream, why);
            else
                kept.Add(upstream);
        }
        return kept;
    }

    /// <summary>The UDP socket's local endpoint (port chosen by the kernel when bound to port 0).</summary>
    public IPEndPoint? UdpEndPoint => _options.UdpSocket?.LocalEndPoint as IPEndPoint;
    /// <summary>The TCP listener's local endpoint.</summary>
    public IPEndPoint? TcpEndPoint => _options.TcpListener?.LocalEndPoint as IPEndPoint;

    /// <summary>Starts serving (returns at once). Call once.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("already started");
        var ct = _stop.Token;
        if (_options.UdpSocket is { } udp)
        {
            for (int i = 0; i < Math.Max(1, _options.UdpReceiveLoops); i++) _loops.Add(StartUdpThread(udp, i, ct));
        }
        if (_options.TcpListener is { } tcp)
        {
            if (!IsListening(tcp)) tcp.Listen(128);
            _loops.Add(Task.Run(() => AcceptLoopAsync(tcp, ct), CancellationToken.None));
        }
        Log.Started(_logger, _options.TaskId, UdpEndPoint, TcpEndPoint, _upstreams.Count);
    }

    private static bool IsListening(Socket s)
    {
        try
        {
            return (int)(s.GetSocketOption(SocketOptionLevel.Socket, (SocketOptionName)30 /* SO_ACCEPTCONN */) ?? 0) != 0;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Stops serving and waits for the loops to end; closes the sockets if <see cref="EmbeddedDnsServerOptions.OwnsSockets"/>.</summary>
    public async Task StopAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        lock (_connections)
        {
            foreach (var c in _connections) c.Dispose();
        }
        if (_options.OwnsSockets)
        {
            _options.UdpSocket?.Dispose();
            _options.TcpListener?.Dispose();
        }
        try
        {
            await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or TimeoutException)
        {
        }
        if (_started != 0) Log.Stopped(_logger, _options.TaskId);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    private DnsClientContext Context(DnsTransport t) => new(_options.TaskId, _options.State, t);

    /// <summary>
    /// One UDP receive loop on a dedicated thread with blocking receive and send: a query is read, answered and
    /// replied to on the same thread, with no thread-pool hop (dns-bench measured the async loop at ~1.8 pool work
    /// items and 5× dnsmasq's CPU per query at 10k q/s, and its latency then depends on whatever else the daemon's
    /// pool is doing). Only forwarded queries go async. The socket must stay in blocking mode: every UDP send is
    /// synchronous (a UDP send does not wait for the peer), since one async operation would switch .NET to
    /// emulated blocking through its epoll thread.
    /// </summary>
    private Task StartUdpThread(Socket udp, int index, CancellationToken ct)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                UdpLoop(udp, ct);
            }
            finally
            {
                done.TrySetResult();
            }
        }, UdpThreadStackSize)
        {
            IsBackground = true,
            Name = $"dns-udp {_options.TaskId}#{index}",
        };
        thread.Start();
        return done.Task;
    }

    /// <summary>The loop needs little stack (a few KB of stackalloc in the codec); one thread per task namespace.</summary>
    private const int UdpThreadStackSize = 256 * 1024;

    /// <summary>How often a blocked receive wakes to look at the stop token (closing the socket wakes it sooner).</summary>
    private static readonly TimeSpan UdpStopPoll = TimeSpan.FromMilliseconds(500);

    private void UdpLoop(Socket udp, CancellationToken ct)
    {
        var request = GC.AllocateUninitializedArray<byte>(DnsMessage.MaxMessageSize);
        var response = GC.AllocateUninitializedArray<byte>(DnsMessage.MaxMessageSize);
        var remote = new SocketAddress(udp.AddressFamily);
        var ctx = Context(DnsTransport.Udp);
        try
        {
            udp.ReceiveTimeout = (int)UdpStopPoll.TotalMilliseconds;
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            return;
        }
        while (!ct.IsCancellationRequested)
        {
            int n;
            try
            {
                n = udp.ReceiveFrom(request, SocketFlags.None, remote);
            }
            catch (ObjectDisposedException) { break; }
            catch (SocketException e)
            {
                if (ct.IsCancellationRequested) break;
                if (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock or SocketError.Interrupted) continue;
                // ICMP errors from earlier sends surface here (ECONNREFUSED...): not fatal for the loop.
                Log.SocketError(_logger, _options.TaskId, DnsTransport.Udp, e.SocketErrorCode.ToString());
                continue;
            }
            int written = 0;
            DnsRequestHandler.Outcome outcome;
            DnsRequestHandler.Query query;
            try
            {
                outcome = _handler.HandleLocal(request.AsSpan(0, n), response, ctx, out written, out query);
            }
            catch (Exception e)
            {
                // Defensive: the handler is written not to throw.
                Log.SocketError(_logger, _options.TaskId, DnsTransport.Udp, "handler: " + e.Message);
                continue;
            }
            if (outcome == DnsRequestHandler.Outcome.Respond)
            {
                SendUdp(udp, response.AsSpan(0, written), remote);
            }
            else if (outcome == DnsRequestHandler.Outcome.Forward)
            {
                var copy = request.AsSpan(0, n).ToArray();
                var to = new SocketAddress(remote.Family, remote.Size);
                remote.Buffer.CopyTo(to.Buffer);
                _ = ForwardUdpAsync(udp, copy, to, query, ctx, ct);
            }
        }
    }

    private async Task ForwardUdpAsync(Socket udp, byte[] request, SocketAddress to, DnsRequestHandler.Query query, DnsClientContext ctx, CancellationToken ct)
    {
        var response = new byte[DnsMessage.MaxMessageSize];
        try
        {
            int n = await _handler.ForwardAsync(request, response, query, ctx, ct).ConfigureAwait(false);
            if (n > 0 && !ct.IsCancellationRequested) SendUdp(udp, response.AsSpan(0, n), to);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        catch (Exception e)
        {
            Log.SocketError(_logger, _options.TaskId, DnsTransport.Udp, "forward: " + e.Message);
        }
    }

    private void SendUdp(Socket udp, ReadOnlySpan<byte> data, SocketAddress to)
    {
        try
        {
            udp.SendTo(data, SocketFlags.None, to);
        }
        catch (SocketException e)
        {
            Log.SocketError(_logger, _options.TaskId, DnsTransport.Udp, e.SocketErrorCode.ToString());
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException e)
            {
                if (ct.IsCancellationRequested) break;
                Log.SocketError(_logger, _options.TaskId, DnsTransport.Tcp, e.SocketErrorCode.ToString());
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            bool accepted;
            lock (_connections)
            {
                accepted = _connections.Count < _options.MaxTcpConnections && !ct.IsCancellationRequested;
                if (accepted) _connections.Add(client);
            }
            if (!accepted)
            {
                Log.Overloaded(_logger, _options.TaskId, "TCP connections", _options.MaxTcpConnections);
                client.Dispose();
                continue;
            }
            _ = Task.Run(() => ServeTcpAsync(client, ct), CancellationToken.None);
        }
    }

    private async Task ServeTcpAsync(Socket client, CancellationToken ct)
    {
        var request = new byte[DnsMessage.MaxMessageSize];
        var response = new byte[DnsMessage.MaxMessageSize + 2];
        var ctx = Context(DnsTransport.Tcp);
        try
        {
            client.NoDelay = true;
            while (!ct.IsCancellationRequested)
            {
                int len;
                using (var idle = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    idle.CancelAfter(_options.TcpIdleTimeout);
                    if (!await ReadExactOrEofAsync(client, request.AsMemory(0, 2), idle.Token).ConfigureAwait(false)) break;
                    len = BinaryPrimitives.ReadUInt16BigEndian(request);
                    if (!await ReadExactOrEofAsync(client, request.AsMemory(0, len), idle.Token).ConfigureAwait(false)) break;
                }
                int n = await _handler.HandleAsync(request.AsMemory(0, len), response.AsMemory(2), ctx, ct).ConfigureAwait(false);
                if (n == 0) break; // dropped query: close the connection
                BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)n);
                await client.SendAsync(response.AsMemory(0, n + 2), SocketFlags.None, ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or IOException)
        {
        }
        catch (Exception e)
        {
            Log.SocketError(_logger, _options.TaskId, DnsTransport.Tcp, e.Message);
        }
        finally
        {
            lock (_connections) _connections.Remove(client);
            try { client.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            client.Dispose();
        }
    }

    /// <summary>Reads exactly buffer.Length bytes; false on a clean EOF before the first byte.</summary>
    private static async ValueTask<bool> ReadExactOrEofAsync(Socket s, Memory<byte> buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await s.ReceiveAsync(buffer[total..], SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                if (total == 0) return false;
                throw new IOException("connection closed mid-message");
            }
            total += n;
        }
        return true;
    }
}
