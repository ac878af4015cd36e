using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Dns;

/// <summary>What the embedded server does with one query, independent of sockets (the fuzz tests drive it).</summary>
internal sealed class DnsRequestHandler
{
    /// <summary>At most one warning per upstream set this often when no limiter is given.</summary>
    internal static readonly TimeSpan DefaultFailureLogInterval = TimeSpan.FromSeconds(10);

    internal enum Outcome : byte { Drop, Respond, Forward }

    /// <summary>The parts of a query the server needs.</summary>
    internal readonly struct Query
    {
        public required DnsHeader Header { get; init; }
        public required DnsQuestion Question { get; init; }
        public bool HasEdns { get; init; }
        public ushort EdnsUdpSize { get; init; }
        public byte EdnsVersion { get; init; }
        public bool DnssecOk { get; init; }
    }

    private readonly IDnsAuthority _authority;
    private readonly IDnsForwarder? _forwarder;
    private readonly DnsMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ushort _maxUdpPayload;
    private readonly int _maxConcurrentForwards;
    private readonly LogRateLimiter _failureLog;
    private int _forwardsInFlight;

    /// <param name="failureLog">
    /// Limits the warnings about forwarding failures (one per upstream set per interval); share one across servers to
    /// share the budget. Null: a limiter of this handler's own with <see cref="DefaultFailureLogInterval"/>.
    /// </param>
    public DnsRequestHandler(IDnsAuthority authority, IDnsForwarder? forwarder, DnsMetrics metrics, ILogger? logger,
        ushort maxUdpPayload = 4096, int maxConcurrentForwards = 256, LogRateLimiter? failureLog = null)
    {
        _failureLog = failureLog ?? new LogRateLimiter(DefaultFailureLogInterval);
        _authority = authority;
        _forwarder = forwarder;
        _metrics = metrics;
        _logger = logger ?? NullLogger.Instance;
        _maxUdpPayload = Math.Max((ushort)512, maxUdpPayload);
        _maxConcurrentForwards = maxConcurrentForwards;
    }

    /// <summary>
    /// Handles one query end to end. Returns the reply length written to <paramref name="response"/> (which must be
    /// 65535 bytes), or 0 to drop the query. Never throws (except for cancellation of <paramref name="ct"/>).
    /// </summary>
    public ValueTask<int> HandleAsync(ReadOnlyMemory<byte> request, Memory<byte> response, DnsClientContext ctx, CancellationToken ct)
    {
        var outcome = HandleLocal(request.Span, response.Span, ctx, out int written, out var query);
        if (outcome != Outcome.Forward) return new(written);
        return ForwardAsync(request, response, query, ctx, ct);
    }

    /// <summary>Synchronous part: parse, validate, answer locally. <see cref="Outcome.Forward"/> leaves the query to <see cref="ForwardAsync"/>.</summary>
    public Outcome HandleLocal(ReadOnlySpan<byte> request, Span<byte> response, DnsClientContext ctx, out int written, out Query query)
    {
        written = 0;
        query = default;
        if (!DnsHeader.TryRead(request, out var header) || header.IsResponse)
        {
            // Unreadable header: nobody to answer. A response sent to us: never answer (no reflection loops).
            _metrics.Malformed();
            _metrics.Dropped(ctx.Transport);
            return Outcome.Drop;
        }
        try
        {
            query = ParseQuery(request, header);
        }
        catch (DnsFormatException e)
        {
            _metrics.Malformed();
            Log(ctx, e.Message);
            written = WriteHeaderOnly(response, header, DnsResponseCode.FormErr);
            _metrics.Reply(DnsResponseCode.FormErr, ctx.Transport);
            return Outcome.Respond;
        }

        int limit = ReplyLimit(query, ctx.Transport);

        if (query.HasEdns && query.EdnsVersion != 0)
            return Reply(response, query, limit, ctx, DnsResponseCode.BadVers, false, null, out written);
        if (header.OpCode != DnsOpCode.Query)
            return Reply(response, query, limit, ctx, DnsResponseCode.NotImp, false, null, out written);
        var q = query.Question;
        if (q.Type is DnsType.AXFR or DnsType.IXFR)
            return Reply(response, query, limit, ctx, DnsResponseCode.Refused, false, null, out written);
        if (q.Type is DnsType.MAILA or DnsType.MAILB or DnsType.OPT)
            return Reply(response, query, limit, ctx, DnsResponseCode.NotImp, false, null, out written);
        if (q.Class is not (DnsClass.IN or DnsClass.ANY)) return Outcome.Forward;

        DnsLookupResult result;
        try
        {
            result = _authority.Lookup(q, ctx);
        }
        catch (Exception e)
        {
            EmbeddedDnsServer.Log.AuthorityFailed(_logger, e, ctx.TaskId, q.Name.ToString(), q.Type);
            return Reply(response, query, limit, ctx, DnsResponseCode.ServFail, false, null, out written);
        }
        return result.Status switch
        {
            DnsLookupStatus.Answered => Reply(response, query, limit, ctx, DnsResponseCode.NoError, true, result, out written),
            DnsLookupStatus.NoData => Reply(response, query, limit, ctx, DnsResponseCode.NoError, true, result, out written),
            DnsLookupStatus.NameError => Reply(response, query, limit, ctx, DnsResponseCode.NXDomain, true, result, out written),
            _ => Outcome.Forward,
        };
    }

    /// <summary>Asynchronous part: forward upstream, relay the reply (ID restored, TC if it does not fit).</summary>
    public async ValueTask<int> ForwardAsync(ReadOnlyMemory<byte> request, Memory<byte> response, Query query, DnsClientContext ctx, CancellationToken ct)
    {
        int limit = ReplyLimit(query, ctx.Transport);
        if (_forwarder is null || !_forwarder.HasUpstreams)
        {
            _metrics.UpstreamFailure("none");
            LogUpstreamFailure(ctx, query, NoUpstreams, "no upstream servers");
            return Reply(response.Span, query, limit, ctx, DnsResponseCode.ServFail);
        }
        if (Interlocked.Increment(ref _forwardsInFlight) > _maxConcurrentForwards)
        {
            Interlocked.Decrement(ref _forwardsInFlight);
            _metrics.UpstreamFailure("busy");
            if (_failureLog.ShouldLog(BusyKeyPrefix + ctx.TaskId, out _))
                EmbeddedDnsServer.Log.Overloaded(_logger, ctx.TaskId, "forwarded queries in flight", _maxConcurrentForwards);
            return Reply(response.Span, query, limit, ctx, DnsResponseCode.ServFail);
        }
        DnsForwardResult result;
        using var activity = DnsTracing.StartForward(query, ctx, _authority.Revision);
        try
        {
            _metrics.Forwarded(ctx.Transport);
            result = await _forwarder.ForwardAsync(request, query.Question, ctx.Transport == DnsTransport.Tcp, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            result = new DnsForwardResult(null, "error: " + e.Message);
        }
        finally
        {
            Interlocked.Decrement(ref _forwardsInFlight);
        }
        DnsTracing.End(activity, result, _forwarder.UpstreamsKey);
        if (result.Reply is not { } reply)
        {
            _metrics.UpstreamFailure(result.FailureReason?.StartsWith("timeout", StringComparison.Ordinal) == true ? "timeout" : "error");
            LogUpstreamFailure(ctx, query, _forwarder.UpstreamsKey, result.FailureReason ?? "unknown");
            return Reply(response.Span, query, limit, ctx, DnsResponseCode.ServFail);
        }
        if (reply.Length > limit || reply.Length > response.Length)
        {
            // Too big for the client's UDP size: header + question (+ our OPT) with TC and the upstream's rcode, as
            // BIND and dnsmasq do; the client retries over TCP, where the whole reply goes through. Cutting at record
            // boundaries would need a full parse of the upstream reply for a message that only serves as a signal.
            var rcode = (DnsResponseCode)(reply[3] & 0xF);
            var flags = (ushort)(DnsHeader.QrFlag | DnsHeader.TcFlag | DnsHeader.RaFlag | (query.Header.Flags & (DnsHeader.RdFlag | DnsHeader.CdFlag | 0x7800)));
            int n = WriteReply(response.Span, query, limit, flags, rcode, null, out _);
            _metrics.Truncated();
            _metrics.Reply(rcode, ctx.Transport);
            return n;
        }
        reply.CopyTo(response);
        BinaryPrimitives.WriteUInt16BigEndian(response.Span, query.Header.Id);
        _metrics.Reply((DnsResponseCode)(reply[3] & 0xF), ctx.Transport);
        if ((reply[2] & 0x02) != 0 && ctx.Transport == DnsTransport.Udp) _metrics.Truncated();
        return reply.Length;
    }

    private const string NoUpstreams = "(none)";
    private const string BusyKeyPrefix = "busy ";

    /// <summary>
    /// One warning per upstream set per interval, saying how many failures it stands for: a dead upstream used to
    /// write one warning per client query into a log that was never rotated. The metric counts every failure.
    /// </summary>
    private void LogUpstreamFailure(DnsClientContext ctx, in Query query, string upstreams, string reason)
    {
        if (!_failureLog.ShouldLog(upstreams, out long suppressed)) return;
        EmbeddedDnsServer.Log.UpstreamFailed(_logger, ctx.TaskId, query.Question.Name.ToString(), query.Question.Type, upstreams, reason,
            suppressed, _failureLog.Interval.TotalSeconds);
    }

    /// <summary>
    /// Largest reply the client takes: TCP 65535; UDP without EDNS 512 (RFC 1035); UDP with EDNS the advertised
    /// payload size clamped to 512..<see cref="EmbeddedDnsServerOptions.MaxUdpPayloadSize"/> (RFC 6891 §6.2.5: below
    /// 512 means 512; above our maximum we do not trust the path to carry it unfragmented). The same limit applies to
    /// local answers and to relayed upstream replies: a forwarded reply used to be held only to the size the client
    /// claimed, however large, and 10,549-byte UDP replies were seen.
    /// </summary>
    internal int ReplyLimit(in Query query, DnsTransport transport) =>
        transport == DnsTransport.Tcp ? DnsMessage.MaxMessageSize
        : query.HasEdns ? Math.Clamp((int)query.EdnsUdpSize, DnsMessage.ClassicUdpSize, _maxUdpPayload)
        : DnsMessage.ClassicUdpSize;

    private int Reply(Span<byte> response, in Query query, int limit, DnsClientContext ctx, DnsResponseCode rcode)
    {
        Reply(response, query, limit, ctx, rcode, false, null, out int written);
        return written;
    }

    private Outcome Reply(Span<byte> response, in Query query, int limit, DnsClientContext ctx, DnsResponseCode rcode, bool authoritative,
        DnsLookupResult? result, out int written)
    {
        ushort flags = (ushort)(DnsHeader.QrFlag | DnsHeader.RaFlag | (query.Header.Flags & (DnsHeader.RdFlag | DnsHeader.CdFlag | 0x7800)));
        if (authoritative) flags |= DnsHeader.AaFlag;
        written = WriteReply(response, query, limit, flags, rcode, result, out bool truncated);
        if (truncated) _metrics.Truncated();
        _metrics.Reply(rcode, ctx.Transport);
        return Outcome.Respond;
    }

    /// <summary>Header + echoed question + sections (truncating with TC) + OPT when the query had one.</summary>
    private int WriteReply(Span<byte> response, in Query query, int limit, ushort flags, DnsResponseCode rcode, DnsLookupResult? result, out bool truncated)
    {
        truncated = false;
        DnsEdns? edns = null;
        int optLen = 0;
        if (query.HasEdns)
        {
            optLen = 11;
        }
        Span<ushort> table = stackalloc ushort[64];
        var w = new DnsWireWriter(response, table, limit - optLen);
        w.WriteZeros(DnsWireReader.HeaderLength);
        w.WriteQuestion(query.Question); // ≤ 259 bytes: always fits in 512 − 11
        int an = 0, ns = 0, ar = 0;
        if (result is { } r)
        {
            an = WriteSection(ref w, r.Answers, ref truncated);
            if (!truncated) ns = WriteSection(ref w, r.Authorities, ref truncated);
            bool dropped = false;
            if (!truncated) ar = WriteSection(ref w, r.Additionals, ref dropped);
        }
        if (query.HasEdns)
        {
            w.Limit = limit;
            edns = new DnsEdns
            {
                UdpPayloadSize = _maxUdpPayload,
                ExtendedRcode = (byte)((int)rcode >> 4),
                Flags = query.DnssecOk ? DnsEdns.DnssecOkFlag : (ushort)0,
            };
            w.WriteEdns(edns);
            ar++;
        }
        if (truncated) flags |= DnsHeader.TcFlag;
        flags = (ushort)((flags & ~0xF) | ((int)rcode & 0xF));
        new DnsHeader(query.Header.Id, flags, 1, (ushort)an, (ushort)ns, (ushort)ar).Write(response);
        return w.Position;
    }

    private static int WriteSection(ref DnsWireWriter w, IReadOnlyList<DnsRecord> records, ref bool truncated)
    {
        int n = 0;
        for (int i = 0; i < records.Count; i++)
        {
            var mark = w.Mark();
            w.WriteRecord(records[i]);
            if (w.Overflowed)
            {
                w.Rewind(mark);
                truncated = true;
                break;
            }
            n++;
        }
        return n;
    }

    private static int WriteHeaderOnly(Span<byte> response, DnsHeader query, DnsResponseCode rcode)
    {
        ushort flags = (ushort)(DnsHeader.QrFlag | DnsHeader.RaFlag | (query.Flags & (DnsHeader.RdFlag | DnsHeader.CdFlag | 0x7800)) | ((int)rcode & 0xF));
        new DnsHeader(query.Id, flags, 0, 0, 0, 0).Write(response);
        return DnsWireReader.HeaderLength;
    }

    /// <summary>Strict parse of a query: exactly one question, every record well-formed, at most one OPT.</summary>
    internal static Query ParseQuery(ReadOnlySpan<byte> request, DnsHeader header)
    {
        var r = new DnsWireReader(request);
        r.ReadBytes(DnsWireReader.HeaderLength);
        if (header.QuestionCount != 1) throw new DnsFormatException("a query must have exactly one question");
        int records = header.AnswerCount + header.AuthorityCount + header.AdditionalCount;
        if ((long)records * 11 + 5 > r.Remaining) throw new DnsFormatException("section counts exceed message length");
        var question = r.ReadQuestion();
        bool hasEdns = false;
        ushort udpSize = 0;
        uint ednsTtl = 0;
        for (int i = 0; i < records; i++)
        {
            bool inAdditional = i >= header.AnswerCount + header.AuthorityCount;
            if (r.ReadOptOrRecord(out ushort cls, out uint ttl))
            {
                if (!inAdditional) throw new DnsFormatException("OPT outside the additional section");
                if (hasEdns) throw new DnsFormatException("more than one OPT record");
                hasEdns = true;
                udpSize = cls;
                ednsTtl = ttl;
            }
        }
        if (r.Remaining != 0) throw new DnsFormatException("trailing bytes after the last record");
        return new Query
        {
            Header = header,
            Question = question,
            HasEdns = hasEdns,
            EdnsUdpSize = udpSize,
            EdnsVersion = (byte)(ednsTtl >> 16),
            DnssecOk = (ednsTtl & DnsEdns.DnssecOkFlag) != 0,
        };
    }

    private void Log(DnsClientContext ctx, string reason)
    {
        if (_logger.IsEnabled(LogLevel.Debug)) EmbeddedDnsServer.Log.Malformed(_logger, ctx.TaskId, ctx.Transport, reason);
    }
}
