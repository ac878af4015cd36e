using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.LoadTests.Steps;

namespace Mesh.LoadTests.Servers;

/// <summary>
/// A tiny HTTP/1.1 responder on raw sockets (no Kestrel): answers every GET with 200 "ok", or
/// with NNN for /status/NNN; honours keep-alive and "Connection: close". <see cref="Delay"/> lets a
/// test stall chosen requests. Used by the tests, the smoke run and `serve`.
/// </summary>
public sealed class TinyHttpServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _acceptLoop;
    private long _requests;
    private long _connections;

    public TinyHttpServer(IPAddress? address = null, int port = 0)
    {
        address ??= IPAddress.Loopback;
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(new IPEndPoint(address, port));
        _listener.Listen(4096);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _acceptLoop = AcceptLoop();
    }

    public IPEndPoint EndPoint { get; }
    public Uri Url => new($"http://{(EndPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{EndPoint.Address}]" : EndPoint.Address.ToString())}:{EndPoint.Port}/");
    public long Requests => Interlocked.Read(ref _requests);
    public long Connections => Interlocked.Read(ref _connections);

    /// <summary>Given the 1-based request number, how long to wait before answering it (null/zero: answer at once).</summary>
    public Func<long, TimeSpan>? Delay { get; set; }

    private async Task AcceptLoop()
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket s;
            try { s = await _listener.AcceptAsync(_cts.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { if (_cts.IsCancellationRequested) return; continue; }
            Interlocked.Increment(ref _connections);
            s.NoDelay = true;
            _ = Task.Run(() => Serve(s));
        }
    }

    private static readonly byte[] HeaderEnd = "\r\n\r\n"u8.ToArray();

    private async Task Serve(Socket s)
    {
        var buf = new byte[16 * 1024];
        int filled = 0;
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                int end = buf.AsSpan(0, filled).IndexOf(HeaderEnd);
                if (end < 0)
                {
                    if (filled == buf.Length) return; // header too large
                    int n = await s.ReceiveAsync(buf.AsMemory(filled), SocketFlags.None, _cts.Token).ConfigureAwait(false);
                    if (n == 0) return;
                    filled += n;
                    continue;
                }
                string head = Encoding.ASCII.GetString(buf, 0, end);
                int consumed = end + 4;
                Buffer.BlockCopy(buf, consumed, buf, 0, filled - consumed);
                filled -= consumed;

                long number = Interlocked.Increment(ref _requests);
                if (Delay?.Invoke(number) is { } d && d > TimeSpan.Zero)
                    await Task.Delay(d, _cts.Token).ConfigureAwait(false);

                int status = 200;
                int firstLineEnd = head.IndexOf("\r\n", StringComparison.Ordinal);
                var requestLine = firstLineEnd < 0 ? head : head[..firstLineEnd];
                var parts = requestLine.Split(' ');
                if (parts.Length >= 2 && parts[1].StartsWith("/status/", StringComparison.Ordinal)
                    && int.TryParse(parts[1].AsSpan(8), out var st) && st is >= 100 and <= 599)
                    status = st;
                bool close = head.Contains("\r\nconnection: close", StringComparison.OrdinalIgnoreCase)
                             || (parts.Length >= 3 && parts[2] == "HTTP/1.0");
                var body = "ok\n";
                var response = $"HTTP/1.1 {status} {(status == 200 ? "OK" : "Status")}\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\n" +
                               (close ? "Connection: close\r\n" : "") + "\r\n" + body;
                var bytes = Encoding.ASCII.GetBytes(response);
                await s.SendAsync(bytes, SocketFlags.None, _cts.Token).ConfigureAwait(false);
                if (close)
                {
                    s.Shutdown(SocketShutdown.Send);
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            s.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try { await _acceptLoop.ConfigureAwait(false); } catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
        _cts.Dispose();
    }
}

/// <summary>A UDP echo responder (sends each datagram back to its source).</summary>
public sealed class UdpEchoServer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;
    private long _datagrams;

    public UdpEchoServer(IPAddress? address = null, int port = 0, Func<ReadOnlyMemory<byte>, byte[]?>? respond = null)
    {
        address ??= IPAddress.Loopback;
        _socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(address, port));
        EndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        Respond = respond;
        _loop = Loop();
    }

    public IPEndPoint EndPoint { get; }
    public long Datagrams => Interlocked.Read(ref _datagrams);
    /// <summary>Turns a request into a reply (null: drop it). Default: echo.</summary>
    public Func<ReadOnlyMemory<byte>, byte[]?>? Respond { get; set; }

    private async Task Loop()
    {
        var buf = new byte[65536];
        EndPoint any = new IPEndPoint(EndPoint.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        while (!_cts.IsCancellationRequested)
        {
            try
            {
                var r = await _socket.ReceiveFromAsync(buf, SocketFlags.None, any, _cts.Token).ConfigureAwait(false);
                Interlocked.Increment(ref _datagrams);
                var request = buf.AsMemory(0, r.ReceivedBytes);
                if (Respond is { } f)
                {
                    var reply = f(request);
                    if (reply is not null) await _socket.SendToAsync(reply, SocketFlags.None, r.RemoteEndPoint, _cts.Token).ConfigureAwait(false);
                }
                else
                {
                    await _socket.SendToAsync(request, SocketFlags.None, r.RemoteEndPoint, _cts.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        try { await _loop.ConfigureAwait(false); } catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
        _cts.Dispose();
    }
}

/// <summary>
/// A minimal authoritative-looking DNS responder over UDP: every A query gets one A record
/// (10.0.0.1, TTL 60) unless the first label starts with "nx" (NXDOMAIN) or "refused" (REFUSED).
/// </summary>
public static class TinyDnsResponder
{
    public static UdpEchoServer Start(IPAddress? address = null, int port = 0) => new(address, port, Answer);

    public static byte[]? Answer(ReadOnlyMemory<byte> query)
    {
        var q = query.Span;
        if (!DnsWire.TryReadHeader(q, out var h) || h.IsResponse) return null;
        // walk the single question's name
        int p = 12;
        var firstLabel = "";
        while (p < q.Length && q[p] != 0)
        {
            int len = q[p];
            if ((len & 0xC0) != 0 || p + 1 + len > q.Length) return null;
            if (firstLabel.Length == 0) firstLabel = Encoding.ASCII.GetString(q.Slice(p + 1, len));
            p += 1 + len;
        }
        p++;
        if (p + 4 > q.Length) return null;
        int questionEnd = p + 4;
        ushort qtype = BinaryPrimitives.ReadUInt16BigEndian(q[p..]);
        int rcode = firstLabel.StartsWith("nx", StringComparison.OrdinalIgnoreCase) ? 3
            : firstLabel.StartsWith("refused", StringComparison.OrdinalIgnoreCase) ? 5 : 0;
        bool answer = rcode == 0 && qtype == DnsWire.TypeA;
        var reply = new byte[questionEnd + (answer ? 16 : 0)];
        q[..questionEnd].CopyTo(reply);
        ushort flags = (ushort)(0x8000 | (BinaryPrimitives.ReadUInt16BigEndian(q[2..]) & 0x7900) | 0x0080 | rcode); // QR, opcode+RD copied, RA
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(6), (ushort)(answer ? 1 : 0));
        reply.AsSpan(8, 4).Clear();
        if (answer)
        {
            var a = reply.AsSpan(questionEnd);
            BinaryPrimitives.WriteUInt16BigEndian(a, 0xC00C);          // name: pointer to the question
            BinaryPrimitives.WriteUInt16BigEndian(a[2..], DnsWire.TypeA);
            BinaryPrimitives.WriteUInt16BigEndian(a[4..], DnsWire.ClassIn);
            BinaryPrimitives.WriteUInt32BigEndian(a[6..], 60);
            BinaryPrimitives.WriteUInt16BigEndian(a[10..], 4);
            a[12] = 10; a[13] = 0; a[14] = 0; a[15] = 1;
        }
        return reply;
    }
}
