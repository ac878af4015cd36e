using System.Diagnostics.Metrics;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

public class DnsRequestHandlerTests
{
    private static readonly DnsRequestHandler Handler = new(new FakeAuthority(), new FakeForwarder(), DnsMetrics.Shared, null);

    private static DnsMessage? Ask(byte[] query, DnsTransport transport = DnsTransport.Udp, DnsRequestHandler? handler = null)
    {
        var buf = new byte[65535];
        int n = (handler ?? Handler).HandleAsync(query, buf, new DnsClientContext("t", null, transport), CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return n == 0 ? null : DnsMessage.Parse(buf.AsSpan(0, n));
    }

    private static byte[] Query(string name, DnsType type = DnsType.A, DnsEdns? edns = null, Action<DnsMessage>? tweak = null)
    {
        var m = new DnsMessage { Id = 0x4242, RecursionDesired = true, CheckingDisabled = true, Edns = edns };
        m.Questions.Add(new DnsQuestion(DnsName.Parse(name), type));
        tweak?.Invoke(m);
        return m.ToArray();
    }

    [Fact]
    public void Answer_copies_id_rd_cd_sets_qr_aa_ra_and_echoes_the_question()
    {
        var r = Ask(Query("Web.Mesh"))!;
        Assert.Equal(0x4242, r.Id);
        Assert.True(r.IsResponse && r.IsAuthoritative && r.RecursionAvailable && r.RecursionDesired && r.CheckingDisabled);
        Assert.Equal("Web.Mesh", r.Questions.Single().Name.ToString());
        Assert.Equal(2, r.Answers.Count);
        Assert.Null(r.Edns);
    }

    [Fact]
    public void Edns_is_answered_with_opt_and_the_do_bit_copied()
    {
        var r = Ask(Query("web.mesh", edns: new DnsEdns { UdpPayloadSize = 1232, Flags = DnsEdns.DnssecOkFlag }))!;
        Assert.NotNull(r.Edns);
        Assert.True(r.Edns!.DnssecOk);
        Assert.Equal(4096, r.Edns.UdpPayloadSize);
    }

    [Fact]
    public void Udp_size_honours_edns_clamped_to_512_and_the_server_maximum()
    {
        var buf = new byte[65535];
        foreach (var (size, max) in new (ushort?, int)[] { (null, 512), (100, 512), (1232, 1232), (2000, 2000) })
        {
            var q = Query("big.mesh", edns: size is { } s ? new DnsEdns { UdpPayloadSize = s } : null);
            int n = Handler.HandleAsync(q, buf, new DnsClientContext("t", null, DnsTransport.Udp), default).AsTask().Result;
            Assert.InRange(n, max - 16, max);
            var r = DnsMessage.Parse(buf.AsSpan(0, n));
            Assert.True(r.IsTruncated);
            Assert.Equal(size is not null, r.Edns is not null); // OPT survives truncation
        }
        // 200 A records ≈ 3.2 kB: fit under the server's 4096 maximum even when the client offers 65000.
        var whole = Ask(Query("big.mesh", edns: new DnsEdns { UdpPayloadSize = 65000 }))!;
        Assert.False(whole.IsTruncated);
        Assert.Equal(200, whole.Answers.Count);
        var tcp = Ask(Query("big.mesh"), DnsTransport.Tcp)!;
        Assert.False(tcp.IsTruncated);
        Assert.Equal(200, tcp.Answers.Count);
    }

    [Fact]
    public void Protocol_errors_map_to_the_right_rcodes()
    {
        Assert.Equal(DnsResponseCode.NotImp, Ask(Query("web.mesh", tweak: m => m.OpCode = DnsOpCode.Notify))!.ResponseCode);
        Assert.Equal(DnsResponseCode.FormErr, Ask(Query("web.mesh", tweak: m => m.Questions.Add(m.Questions[0])))!.ResponseCode);
        Assert.Equal(DnsResponseCode.FormErr, Ask(Query("web.mesh", tweak: m => m.Questions.Clear()))!.ResponseCode);
        Assert.Equal(DnsResponseCode.Refused, Ask(Query("web.mesh", DnsType.AXFR))!.ResponseCode);
        var badvers = Ask(Query("web.mesh", edns: new DnsEdns { Version = 1 }))!;
        Assert.Equal(1, badvers.Edns!.ExtendedRcode); // BADVERS = 16 = (1 << 4) | 0
        Assert.Equal(DnsResponseCode.NoError, badvers.ResponseCode);
        Assert.Null(Ask(Query("web.mesh", tweak: m => m.IsResponse = true)));   // responses are never answered
        Assert.Equal(DnsResponseCode.ServFail, Ask(Query("boom.mesh"))!.ResponseCode);
    }

    [Fact]
    public void Negative_answers()
    {
        var nx = Ask(Query("nope.mesh"))!;
        Assert.Equal(DnsResponseCode.NXDomain, nx.ResponseCode);
        Assert.Equal(DnsType.SOA, nx.Authorities.Single().Type);
        var nodata = Ask(Query("v4only.mesh", DnsType.AAAA))!;
        Assert.Equal(DnsResponseCode.NoError, nodata.ResponseCode);
        Assert.Empty(nodata.Answers);
        Assert.True(nodata.IsAuthoritative);
    }

    [Fact]
    public void Forwarded_replies_get_the_client_id_back_and_tc_when_too_big_for_udp()
    {
        var r = Ask(Query("www.example.com"))!;
        Assert.Equal(0x4242, r.Id);
        Assert.False(r.IsAuthoritative);
        Assert.Single(r.Answers);

        var huge = Ask(Query("huge.example.com"))!;
        Assert.True(huge.IsTruncated);
        Assert.Empty(huge.Answers);
        Assert.Equal("huge.example.com", huge.Questions.Single().Name.ToString());
        Assert.Equal(150, Ask(Query("huge.example.com"), DnsTransport.Tcp)!.Answers.Count);

        Assert.Equal(DnsResponseCode.ServFail, Ask(Query("fail.example.com"))!.ResponseCode);
        var chaos = Query("version.bind", DnsType.TXT, tweak: m => m.Questions[0] = new DnsQuestion(m.Questions[0].Name, DnsType.TXT, DnsClass.CH));
        Assert.Single(Ask(chaos)!.Answers); // non-IN classes are not the authority's: forwarded
    }

    [Theory]
    [InlineData(null, 512)]      // no EDNS: RFC 1035's 512
    [InlineData(100, 512)]       // below 512 counts as 512 (RFC 6891 §6.2.5)
    [InlineData(1232, 1232)]
    [InlineData(65535, 4096)]    // clamped to the server's maximum: this one used to get the whole 11 KB over UDP
    public void Forwarded_udp_reply_never_exceeds_the_clients_size_clamped_to_512_and_the_server_maximum(int? advertised, int limit)
    {
        var edns = advertised is { } size ? new DnsEdns { UdpPayloadSize = (ushort)size } : null;
        var buf = new byte[65535];
        int n = Handler.HandleAsync(Query("giant.example.com", DnsType.TXT, edns), buf, new DnsClientContext("t", null, DnsTransport.Udp), CancellationToken.None)
            .AsTask().GetAwaiter().GetResult();
        Assert.InRange(n, 12, limit);
        var r = DnsMessage.Parse(buf.AsSpan(0, n));
        Assert.True(r.IsTruncated);
        Assert.Equal(0x4242, r.Id);
        Assert.Equal("giant.example.com", r.Questions.Single().Name.ToString());
        Assert.Equal(advertised is not null, r.Edns is not null);

        // Over TCP the same reply goes through whole.
        var tcp = Ask(Query("giant.example.com", DnsType.TXT, edns), DnsTransport.Tcp)!;
        Assert.False(tcp.IsTruncated);
        Assert.Equal(500, tcp.Answers.Count);
    }

    [Fact]
    public void Forwarded_reply_that_fits_the_advertised_size_goes_whole_over_udp_and_truncation_keeps_the_rcode()
    {
        var fits = Ask(Query("huge.example.com", DnsType.TXT, new DnsEdns { UdpPayloadSize = 4096 }))!; // ≈3,500 bytes
        Assert.False(fits.IsTruncated);
        Assert.Equal(150, fits.Answers.Count);

        var nx = Ask(Query("nxgiant.example.com", DnsType.TXT))!;
        Assert.True(nx.IsTruncated);
        Assert.Equal(DnsResponseCode.NXDomain, nx.ResponseCode);
    }

    [Fact]
    public void No_upstreams_means_servfail()
    {
        var h = new DnsRequestHandler(new FakeAuthority(), new DnsForwarder([], TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), null, null), DnsMetrics.Shared, null);
        Assert.Equal(DnsResponseCode.ServFail, Ask(Query("example.com"), handler: h)!.ResponseCode);
    }

    [Fact]
    public void Metrics_count_replies_by_rcode_on_the_mesh_meter()
    {
        var counts = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (inst, l) => { if (inst.Meter.Name == "Mesh" && inst.Name.StartsWith("mesh.dns.", StringComparison.Ordinal)) l.EnableMeasurementEvents(inst); };
        listener.SetMeasurementEventCallback<long>((inst, value, tags, _) =>
        {
            string key = inst.Name;
            foreach (var t in tags) if (t.Key == "rcode") key += ":" + t.Value;
            lock (counts) counts[key] = counts.GetValueOrDefault(key) + value;
        });
        listener.Start();
        var h = new DnsRequestHandler(new FakeAuthority(), new FakeForwarder(), DnsMetrics.Shared, null);
        Ask(Query("web.mesh"), handler: h);
        Ask(Query("nope.mesh"), handler: h);
        Ask(Query("www.example.com"), handler: h);
        Ask(Query("fail.example.com"), handler: h);
        Ask([1, 2, 3], handler: h);
        lock (counts)
        {
            Assert.True(counts.GetValueOrDefault("mesh.dns.queries:NOERROR") >= 2);
            Assert.True(counts.GetValueOrDefault("mesh.dns.queries:NXDOMAIN") >= 1);
            Assert.True(counts.GetValueOrDefault("mesh.dns.queries:SERVFAIL") >= 1);
            Assert.True(counts.GetValueOrDefault("mesh.dns.queries:DROPPED") >= 1);
            Assert.True(counts.GetValueOrDefault("mesh.dns.forwarded") >= 2);
            Assert.True(counts.GetValueOrDefault("mesh.dns.upstream.failures") >= 1);
        }
    }
}
