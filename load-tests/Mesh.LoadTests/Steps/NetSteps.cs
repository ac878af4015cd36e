using System.Net;
using System.Net.Sockets;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Metrics;

namespace Mesh.LoadTests.Steps;

/// <summary>Shared socket helpers: endpoint parsing and binding to a chosen source address.</summary>
public static class Net
{
    private const int SolIp = 0;               // IPPROTO_IP
    private const int IpBindAddressNoPort = 24; // linux/in.h: defer port choice to connect()

    /// <summary>Parses "host:port", "[v6]:port" or "host" (with <paramref name="defaultPort"/>); resolves names (IPv4 preferred).</summary>
    public static IPEndPoint ParseEndPoint(string text, int? defaultPort = null)
    {
        string host = text.Trim();
        int? port = defaultPort;
        if (host.StartsWith('['))
        {
            int close = host.IndexOf(']');
            if (close < 0) throw new FormatException($"bad endpoint '{text}'");
            if (close + 1 < host.Length)
            {
                if (host[close + 1] != ':') throw new FormatException($"bad endpoint '{text}'");
                port = int.Parse(host.AsSpan(close + 2), System.Globalization.CultureInfo.InvariantCulture);
            }
            host = host[1..close];
        }
        else
        {
            int colon = host.LastIndexOf(':');
            if (colon > 0 && host.IndexOf(':') == colon) // exactly one colon: host:port (bare IPv6 has several)
            {
                port = int.Parse(host.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture);
                host = host[..colon];
            }
        }
        if (port is not { } p || p is < 1 or > 65535) throw new FormatException($"'{text}' needs a port (host:port)");
        if (IPAddress.TryParse(host, out var ip)) return new IPEndPoint(ip, p);
        var addresses = Dns.GetHostAddresses(host);
        var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                     ?? throw new FormatException($"cannot resolve '{host}'");
        return new IPEndPoint(chosen, p);
    }

    /// <summary>Binds <paramref name="socket"/> to <paramref name="source"/> (port chosen at connect time for TCP).</summary>
    public static void BindSource(Socket socket, IPAddress? source)
    {
        if (source is null) return;
        if (socket.SocketType == SocketType.Stream && OperatingSystem.IsLinux() && source.AddressFamily == AddressFamily.InterNetwork)
        {
            // without this a bind() to port 0 reserves the port for every destination and new-connection
            // runs exhaust the ephemeral range much sooner
            try { socket.SetRawSocketOption(SolIp, IpBindAddressNoPort, BitConverter.GetBytes(1)); }
            catch (SocketException) { }
        }
        socket.Bind(new IPEndPoint(source, 0));
    }
}

/// <summary>Options common to the socket steps.</summary>
public sealed record SocketStepOptions
{
    public IPAddress? Bind { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>HTTP GET through SocketsHttpHandler: keep-alive pool of N connections, or a new connection per request.</summary>
public sealed class HttpGetStep : IStepFactory
{
    private readonly HttpClient _client;
    private readonly Uri _url;
    private readonly bool _newConnection;

    public HttpGetStep(Uri url, int connections, bool newConnection, SocketStepOptions options)
    {
        _url = url;
        _newConnection = newConnection;
        var bind = options.Bind;
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = Math.Max(1, connections),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            ConnectTimeout = options.Timeout,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectCallback = async (ctx, ct) =>
            {
                var remote = ctx.DnsEndPoint;
                IPAddress address = IPAddress.TryParse(remote.Host, out var ip)
                    ? ip
                    : (await Dns.GetHostAddressesAsync(remote.Host, ct).ConfigureAwait(false))
                        .First(a => bind is null || a.AddressFamily == bind.AddressFamily);
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    Net.BindSource(socket, bind);
                    await socket.ConnectAsync(new IPEndPoint(address, remote.Port), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _client = new HttpClient(handler) { Timeout = options.Timeout };
        Connections = connections;
    }

    public string Name => _newConnection ? "http-get-new-conn" : "http-get";
    public string Target => _url.ToString();
    public int Connections { get; }

    public IStepInstance CreateInstance(int index) => new Instance(this);

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Instance(HttpGetStep step) : IStepInstance
    {
        private readonly byte[] _buffer = new byte[16 * 1024];

        public async ValueTask<StepResult> ExecuteAsync(CancellationToken ct)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, step._url)
            {
                Version = HttpVersion.Version11,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            if (step._newConnection) request.Headers.ConnectionClose = true;
            try
            {
                using var response = await step._client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
                long bytes = 0;
                var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    int n;
                    while ((n = await body.ReadAsync(_buffer, ct).ConfigureAwait(false)) > 0) bytes += n;
                }
                int code = (int)response.StatusCode;
                var status = ErrorKinds.Status(code);
                return code < 400 ? StepResult.Success(status, bytes) : StepResult.BadStatus(status, bytes);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                return StepResult.Failure(ErrorKinds.Classify(e));
            }
        }

        public void Dispose() { }
    }
}

/// <summary>TCP connect then close (optionally with an RST: linger 0, leaving no TIME_WAIT behind).</summary>
public sealed class TcpConnectStep(IPEndPoint target, bool reset, SocketStepOptions options) : IStepFactory
{
    private readonly IPEndPoint _target = target;
    private readonly bool _reset = reset;
    private readonly SocketStepOptions _options = options;
    public string Name => _reset ? "tcp-connect-rst" : "tcp-connect";
    public string Target => _target.ToString();
    public IStepInstance CreateInstance(int index) => new Instance(this);
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class Instance(TcpConnectStep step) : IStepInstance
    {
        public async ValueTask<StepResult> ExecuteAsync(CancellationToken ct)
        {
            var socket = new Socket(step._target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(step._options.Timeout);
            try
            {
                Net.BindSource(socket, step._options.Bind);
                await socket.ConnectAsync(step._target, timeout.Token).ConfigureAwait(false);
                if (step._reset) socket.LingerState = new LingerOption(true, 0);
                return StepResult.Success("connected");
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                return StepResult.Failure(e is OperationCanceledException ? ErrorKinds.Timeout : ErrorKinds.Classify(e));
            }
            finally
            {
                socket.Dispose();
            }
        }

        public void Dispose() { }
    }
}

/// <summary>
/// One datagram out, one back, on a connected UDP socket per worker. After a timeout the socket is
/// replaced (new source port), so a late reply can never be taken for the next request's.
/// </summary>
public abstract class UdpExchangeStep(IPEndPoint target, SocketStepOptions options) : IStepFactory
{
    private readonly IPEndPoint _target = target;
    private readonly SocketStepOptions _options = options;
    public abstract string Name { get; }
    public string Target => _target.ToString();
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    public IStepInstance CreateInstance(int index) => new Instance(this, index);

    /// <summary>Writes request number <paramref name="sequence"/>; returns its length and the token a reply must carry.</summary>
    protected abstract int WriteRequest(Span<byte> buffer, long sequence, out ulong token);

    /// <summary>Classifies a reply; null means "not ours / stale, keep waiting".</summary>
    protected abstract StepResult? ReadReply(ReadOnlySpan<byte> reply, ulong token);

    private sealed class Instance : IStepInstance
    {
        private readonly UdpExchangeStep _step;
        private readonly byte[] _send = new byte[1500];
        private readonly byte[] _receive = new byte[65536];
        private Socket? _socket;
        private long _sequence;

        public Instance(UdpExchangeStep step, int index)
        {
            _step = step;
            _sequence = (long)index << 40;
        }

        private Socket Open()
        {
            var s = new Socket(_step._target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                Net.BindSource(s, _step._options.Bind);
                s.Connect(_step._target);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }

        public async ValueTask<StepResult> ExecuteAsync(CancellationToken ct)
        {
            Socket socket;
            try { socket = _socket ??= Open(); }
            catch (Exception e) { return StepResult.Failure(ErrorKinds.Classify(e)); }
            int length = _step.WriteRequest(_send, _sequence++, out var token);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_step._options.Timeout);
            try
            {
                await socket.SendAsync(_send.AsMemory(0, length), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                while (true)
                {
                    int n = await socket.ReceiveAsync(_receive, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (_step.ReadReply(_receive.AsSpan(0, n), token) is { } result)
                        return result with { Bytes = n };
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                // drop the socket: a late reply must not be read as the next request's
                _socket = null;
                socket.Dispose();
                return StepResult.Failure(e is OperationCanceledException ? ErrorKinds.Timeout : ErrorKinds.Classify(e));
            }
        }

        public void Dispose() => _socket?.Dispose();
    }
}

/// <summary>UDP request/response: the payload is prefixed with an 8-byte sequence number; with <c>echo</c> the reply must carry it back.</summary>
public sealed class UdpStep(IPEndPoint target, byte[] payload, bool requireEcho, SocketStepOptions options) : UdpExchangeStep(target, options)
{
    public override string Name => "udp";

    protected override int WriteRequest(Span<byte> buffer, long sequence, out ulong token)
    {
        token = (ulong)sequence;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(buffer, token);
        int n = Math.Min(payload.Length, buffer.Length - 8);
        payload.AsSpan(0, n).CopyTo(buffer[8..]);
        return 8 + n;
    }

    protected override StepResult? ReadReply(ReadOnlySpan<byte> reply, ulong token)
    {
        if (!requireEcho) return StepResult.Success("reply");
        if (reply.Length < 8) return StepResult.BadStatus("short-reply");
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(reply) == token ? StepResult.Success("echo") : null;
    }
}

/// <summary>DNS query over UDP (hand-encoded A query, random id); the status is the reply's rcode.</summary>
public sealed class DnsQueryStep(IPEndPoint server, IReadOnlyList<string> names, IReadOnlySet<int> okRcodes, ushort qtype, SocketStepOptions options)
    : UdpExchangeStep(server, options)
{
    public override string Name => "dns-query";

    protected override int WriteRequest(Span<byte> buffer, long sequence, out ulong token)
    {
        ushort id = (ushort)Random.Shared.Next(0, 65536);
        token = id;
        var name = names[(int)((sequence & 0xFFFFFFFF) % names.Count)];
        return DnsWire.EncodeQuery(buffer, id, name, qtype);
    }

    protected override StepResult? ReadReply(ReadOnlySpan<byte> reply, ulong token)
    {
        if (!DnsWire.TryReadHeader(reply, out var h) || !h.IsResponse || h.Id != (ushort)token) return null;
        var status = DnsWire.RcodeName(h.Rcode);
        return okRcodes.Contains(h.Rcode) ? StepResult.Success(status) : StepResult.BadStatus(status);
    }
}
