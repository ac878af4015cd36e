using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Dns;

/// <summary>Result of forwarding: the upstream reply (well-formed, matching question; ID still the upstream one) or why not.</summary>
internal readonly record struct DnsForwardResult(byte[]? Reply, string? FailureReason);

internal interface IDnsForwarder
{
    bool HasUpstreams { get; }
    /// <summary>The upstream servers as one string ("198.18.0.53:53,192.0.2.53:53"): names them in logs, keys the log limiter.</summary>
    string UpstreamsKey { get; }
    ValueTask<DnsForwardResult> ForwardAsync(ReadOnlyMemory<byte> query, DnsQuestion question, bool tcp, CancellationToken ct);
}

/// <summary>Creates a socket for talking to upstream servers (e.g. inside a network namespace).</summary>
public delegate Socket DnsSocketFactory(AddressFamily family, SocketType type, ProtocolType protocol);

/// <summary>
/// Forwards queries for names the authority does not own. Per query: a fresh connected UDP socket (random source
/// port) and a random query ID; if the reply is truncated, the same server is asked over TCP. Servers are tried in
/// order within a per-try timeout; SERVFAIL/REFUSED/NOTIMP make it try the next one (that reply is kept as a last
/// resort); the whole thing ends within the total timeout.
/// </summary>
internal sealed class DnsForwarder : IDnsForwarder
{
    private readonly IReadOnlyList<IPEndPoint> _upstreams;
    private readonly TimeSpan _tryTimeout;
    private readonly TimeSpan _totalTimeout;
    private readonly DnsSocketFactory _socketFactory;
    private readonly ILogger _logger;

    public DnsForwarder(IReadOnlyList<IPEndPoint> upstreams, TimeSpan tryTimeout, TimeSpan totalTimeout, DnsSocketFactory? socketFactory, ILogger? logger)
    {
        _upstreams = upstreams;
        _tryTimeout = tryTimeout;
        _totalTimeout = totalTimeout;
        _socketFactory = socketFactory ?? ((f, t, p) => new Socket(f, t, p));
        _logger = logger ?? NullLogger.Instance;
        UpstreamsKey = upstreams.Count == 0 ? "(none)" : string.Join(',', upstreams);
    }

    public bool HasUpstreams => _upstreams.Count > 0;

    public string UpstreamsKey { get; }

    public async ValueTask<DnsForwardResult> ForwardAsync(ReadOnlyMemory<byte> query, DnsQuestion question, bool tcp, CancellationToken ct)
    {
        using var total = CancellationTokenSource.CreateLinkedTokenSource(ct);
        total.CancelAfter(_totalTimeout);
        var buffer = query.ToArray();
        byte[]? fallback = null;
        string reason = "no upstream servers";
        foreach (var upstream in _upstreams)
        {
            if (total.IsCancellationRequested) break;
            try
            {
                byte[]? reply;
                if (!tcp)
                {
                    reply = await ExchangeAsync(upstream, buffer, question, useTcp: false, total.Token).ConfigureAwait(false);
                    if ((reply[2] & 0x02) != 0)
                    {
                        try
                        {
                            reply = await ExchangeAsync(upstream, buffer, question, useTcp: true, total.Token).ConfigureAwait(false);
                        }
                        catch (Exception e) when (e is SocketException or IOException or DnsFormatException
                            || (e is OperationCanceledException && !ct.IsCancellationRequested))
                        {
                            // Keep the truncated reply: the client sees TC and retries over TCP itself.
                            LogTry(upstream, "tcp", question, e);
                        }
                    }
                }
                else
                {
                    reply = await ExchangeAsync(upstream, buffer, question, useTcp: true, total.Token).ConfigureAwait(false);
                }
                var rcode = (DnsResponseCode)(reply[3] & 0xF);
                if (rcode is DnsResponseCode.ServFail or DnsResponseCode.Refused or DnsResponseCode.NotImp)
                {
                    fallback = reply;
                    reason = "upstream " + rcode;
                    continue;
                }
                return new DnsForwardResult(reply, null);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                reason = total.IsCancellationRequested ? "timeout (total)" : "timeout";
                LogTry(upstream, tcp ? "tcp" : "udp", question, null);
            }
            catch (Exception e) when (e is SocketException or IOException or DnsFormatException)
            {
                reason = "error: " + e.Message;
                LogTry(upstream, tcp ? "tcp" : "udp", question, e);
            }
        }
        return fallback is not null ? new DnsForwardResult(fallback, null) : new DnsForwardResult(null, reason);
    }

    private void LogTry(IPEndPoint upstream, string transport, DnsQuestion q, Exception? e)
    {
        if (_logger.IsEnabled(LogLevel.Debug))
            EmbeddedDnsServer.Log.UpstreamTryFailed(_logger, upstream, transport, q.Name.ToString(), e?.Message ?? "timeout");
    }

    private async Task<byte[]> ExchangeAsync(IPEndPoint upstream, byte[] query, DnsQuestion question, bool useTcp, CancellationToken ct)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
        attempt.CancelAfter(_tryTimeout);
        var token = attempt.Token;
        ushort id = (ushort)RandomNumberGenerator.GetInt32(65536);
        var q = (byte[])query.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(q, id);
        using var socket = _socketFactory(upstream.AddressFamily, useTcp ? SocketType.Stream : SocketType.Dgram, useTcp ? ProtocolType.Tcp : ProtocolType.Udp);
        byte[] rbuf = ArrayPool<byte>.Shared.Rent(DnsMessage.MaxMessageSize);
        try
        {
            await socket.ConnectAsync(upstream, token).ConfigureAwait(false);
            if (!useTcp)
            {
                await socket.SendAsync(q, SocketFlags.None, token).ConfigureAwait(false);
                while (true)
                {
                    int n = await socket.ReceiveAsync(rbuf.AsMemory(0, DnsMessage.MaxMessageSize), SocketFlags.None, token).ConfigureAwait(false);
                    // A connected UDP socket only delivers datagrams from the upstream; still check ID and question.
                    var datagram = rbuf.AsSpan(0, n);
                    if (IsReplyTo(datagram, id, question)) return datagram.ToArray();
                    if (TruncatedReplyTo(datagram, id, question) is { } tc) return tc;
                }
            }
            var framed = new byte[q.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)q.Length);
            q.CopyTo(framed, 2);
            await socket.SendAsync(framed, SocketFlags.None, token).ConfigureAwait(false);
            await ReceiveExactlyAsync(socket, rbuf.AsMemory(0, 2), token).ConfigureAwait(false);
            int len = BinaryPrimitives.ReadUInt16BigEndian(rbuf);
            await ReceiveExactlyAsync(socket, rbuf.AsMemory(0, len), token).ConfigureAwait(false);
            if (!IsReplyTo(rbuf.AsSpan(0, len), id, question)) throw new DnsFormatException("upstream TCP reply does not match the query");
            return rbuf.AsSpan(0, len).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rbuf);
        }
    }

    internal static async ValueTask ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        while (buffer.Length > 0)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("connection closed");
            buffer = buffer[n..];
        }
    }

    /// <summary>
    /// Some servers cut a truncated UDP reply mid-record. If the header says TC and the question matches, return a
    /// clean header + question reply with TC (it only serves to trigger the TCP retry).
    /// </summary>
    internal static byte[]? TruncatedReplyTo(ReadOnlySpan<byte> reply, ushort id, DnsQuestion question)
    {
        if (!DnsHeader.TryRead(reply, out var h) || h.Id != id || !h.IsResponse || !h.IsTruncated || h.QuestionCount != 1) return null;
        try
        {
            var r = new DnsWireReader(reply);
            r.ReadBytes(DnsWireReader.HeaderLength);
            if (!r.ReadQuestion().Equals(question)) return null;
        }
        catch (DnsFormatException)
        {
            return null;
        }
        var m = new DnsMessage { Id = id, Flags = h.Flags };
        m.Questions.Add(question);
        return m.ToArray();
    }

    /// <summary>A well-formed response with our ID and the same single question.</summary>
    internal static bool IsReplyTo(ReadOnlySpan<byte> reply, ushort id, DnsQuestion question)
    {
        if (!DnsHeader.TryRead(reply, out var h) || h.Id != id || !h.IsResponse || h.OpCode != DnsOpCode.Query) return false;
        if (!DnsMessage.TryParse(reply, out var m)) return false;
        return m.Questions.Count == 1 && m.Questions[0].Equals(question);
    }
}
