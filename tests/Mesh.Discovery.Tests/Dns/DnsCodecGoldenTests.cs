using System.Net;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>
/// Bytes captured from real tools (dig 9.18 from bind9-dnsutils as the client, dnsmasq 2.90 as the server,
/// captured with a UDP listener on loopback), committed as hex.
/// </summary>
public class DnsCodecGoldenTests
{
    // dig @127.0.0.1 www.example.test A  (EDNS udp 1232, cookie option 10, AD set)
    internal const string DigQueryWithCookie =
        "ede00120000100000000000103777777076578616d706c650474657374000001000100002904d000000000000c000a00087a162051ed223a56";
    // dig web.Example.TEST AAAA +nocookie (case preserved)
    internal const string DigQueryMixedCase =
        "2fcd0120000100000000000103776562074578616d706c65045445535400001c000100002904d0000000000000";
    // dig _http._tcp.web SRV +noedns
    internal const string DigQueryNoEdns = "b57901200001000000000000055f68747470045f746370037765620000210001";

    // dnsmasq --address=/example.test/192.0.2.1: answer to www.example.test A, owner compressed to the question.
    internal const string DnsmasqAnswerA =
        "2ca98580000100010000000103777777076578616d706c6504746573740000010001c00c00010001000000000004c000020100002904d0000000000000";
    internal const string DnsmasqAnswerSrv =
        "acae85800001000100000001055f68747470045f746370076578616d706c6504746573740000210001c00c002100010000000000180001000a005003776562076578616d706c6504746573740000002904d0000000000000";
    internal const string DnsmasqAnswerTxt =
        "c0c28580000100010000000103747874076578616d706c6504746573740000100001c00c001000010000000000130b68656c6c6f20776f726c64067365636f6e6400002904d0000000000000";
    internal const string DnsmasqAnswerPtr =
        "55e6858000010001000000010131013201300331393207696e2d61646472046172706100000c0001c00c000c000100000000001203776562076578616d706c6504746573740000002904d0000000000000";
    internal const string DnsmasqAnswerCname =
        "ed118580000100010000000105616c696173076578616d706c6504746573740000010001c00c0005000100000000001203777777076578616d706c6504746573740000002904d0000000000000";
    internal const string DnsmasqAnswerAaaa =
        "796385800001000100000001027636076578616d706c65047465737400001c0001c00c001c000100000000001020010db800000000000000000000000100002904d0000000000000";
    internal const string DnsmasqRefusedNoEdns = "424281850001000000000000046e6f706507696e76616c69640000010001";

    private static DnsMessage P(string hex) => DnsMessage.Parse(Convert.FromHexString(hex));

    [Fact]
    public void Dig_query_with_cookie()
    {
        var m = P(DigQueryWithCookie);
        Assert.Equal(0xede0, m.Id);
        Assert.False(m.IsResponse);
        Assert.True(m.RecursionDesired);
        Assert.True(m.AuthenticData);
        var q = Assert.Single(m.Questions);
        Assert.Equal("www.example.test", q.Name.ToString());
        Assert.Equal(DnsType.A, q.Type);
        Assert.Equal(DnsClass.IN, q.Class);
        Assert.NotNull(m.Edns);
        Assert.Equal(1232, m.Edns!.UdpPayloadSize);
        Assert.Equal(0, m.Edns.Version);
        var cookie = Assert.Single(m.Edns.Options);
        Assert.Equal(10, cookie.Code);
        Assert.Equal(8, cookie.Data.Length);
        Assert.Empty(m.Additionals);
        // Our writer reproduces dig's bytes exactly.
        Assert.Equal(DigQueryWithCookie, Convert.ToHexStringLower(m.ToArray()));
    }

    [Fact]
    public void Dig_query_case_is_preserved_and_names_compare_case_insensitively()
    {
        var m = P(DigQueryMixedCase);
        Assert.Equal("web.Example.TEST", m.Questions[0].Name.ToString());
        Assert.Equal(DnsName.Parse("WEB.example.test"), m.Questions[0].Name);
        Assert.Equal(DnsType.AAAA, m.Questions[0].Type);
        Assert.Empty(m.Edns!.Options);
        Assert.Equal(DigQueryMixedCase, Convert.ToHexStringLower(m.ToArray()));
    }

    [Fact]
    public void Dig_query_without_edns()
    {
        var m = P(DigQueryNoEdns);
        Assert.Null(m.Edns);
        Assert.Equal("_http._tcp.web", m.Questions[0].Name.ToString());
        Assert.Equal(DnsType.SRV, m.Questions[0].Type);
        Assert.Equal(DigQueryNoEdns, Convert.ToHexStringLower(m.ToArray()));
    }

    [Fact]
    public void Dnsmasq_answers_parse_and_rewrite_identically()
    {
        foreach (var hex in new[] { DnsmasqAnswerA, DnsmasqAnswerSrv, DnsmasqAnswerTxt, DnsmasqAnswerPtr, DnsmasqAnswerAaaa, DnsmasqRefusedNoEdns })
        {
            var m = P(hex);
            Assert.True(m.IsResponse);
            Assert.Equal(hex, Convert.ToHexStringLower(m.ToArray()));
        }
        // dnsmasq does not compress the CNAME target; we do (RFC 1035 allows it). Same message, 12 bytes shorter.
        var cname = P(DnsmasqAnswerCname);
        var ours = cname.ToArray();
        Assert.Equal(Convert.FromHexString(DnsmasqAnswerCname).Length - 12, ours.Length);
        DnsGenerators.AssertSameMessage(cname, DnsMessage.Parse(ours));
    }

    [Fact]
    public void Dnsmasq_answer_contents()
    {
        var a = P(DnsmasqAnswerA);
        Assert.True(a.IsAuthoritative);
        Assert.Equal(DnsResponseCode.NoError, a.ResponseCode);
        var rec = Assert.Single(a.Answers);
        Assert.Equal(IPAddress.Parse("192.0.2.1"), ((ARecordData)rec.Data).Address);
        Assert.Equal("www.example.test", rec.Name.ToString());

        var srv = (SrvRecordData)Assert.Single(P(DnsmasqAnswerSrv).Answers).Data;
        Assert.Equal((1, 10, 80), ((int)srv.Priority, (int)srv.Weight, (int)srv.Port));
        Assert.Equal(DnsName.Parse("web.example.test"), srv.Target);

        var txt = (TxtRecordData)Assert.Single(P(DnsmasqAnswerTxt).Answers).Data;
        Assert.Equal(["hello world", "second"], txt.Strings.Select(s => System.Text.Encoding.ASCII.GetString(s)));

        var ptr = Assert.Single(P(DnsmasqAnswerPtr).Answers);
        Assert.Equal("1.2.0.192.in-addr.arpa", ptr.Name.ToString());
        Assert.Equal("web.example.test", ((NameRecordData)ptr.Data).Name.ToString());

        var cname = Assert.Single(P(DnsmasqAnswerCname).Answers);
        Assert.Equal(DnsType.CNAME, cname.Type);

        var aaaa = Assert.Single(P(DnsmasqAnswerAaaa).Answers);
        Assert.Equal(IPAddress.Parse("2001:db8::1"), ((AaaaRecordData)aaaa.Data).Address);

        var refused = P(DnsmasqRefusedNoEdns);
        Assert.Equal(DnsResponseCode.Refused, refused.ResponseCode);
        Assert.Null(refused.Edns);
    }

    [Fact]
    public void Compressed_names_inside_rdata_are_decompressed()
    {
        // Hand-made: question a.example; answer CNAME whose target "b" + pointer to "example" (offset 14).
        var hex = "1234" + "8180" + "0001000100000000"
            + "0161076578616d706c6500" + "00010001"          // q: a.example A IN (name at 12, "example" at 14)
            + "c00c" + "0005" + "0001" + "0000003c" + "0004" + "0162c00e"; // CNAME b.example
        var m = P(hex);
        Assert.Equal("b.example", ((NameRecordData)m.Answers[0].Data).Name.ToString());
    }

    [Fact]
    public void Writer_compresses_owner_names_and_rdata_names_but_not_srv_targets()
    {
        var m = new DnsMessage { Id = 1, IsResponse = true };
        var web = DnsName.Parse("_http._tcp.web.appnet");
        m.Questions.Add(new DnsQuestion(web, DnsType.SRV));
        m.Answers.Add(DnsRecord.Srv(web, 0, 0, 0, 80, DnsName.Parse("web.appnet")));
        m.Answers.Add(DnsRecord.Cname(DnsName.Parse("x.web.appnet"), 0, DnsName.Parse("web.appnet")));
        var wire = m.ToArray();
        // SRV owner: pointer to the question name at 12.
        int srvOwner = 12 + web.WireLength + 4;
        Assert.Equal(0xC0, wire[srvOwner]);
        Assert.Equal(12, wire[srvOwner + 1]);
        // SRV target written in full (uncompressed) per RFC 2782.
        int srvTarget = srvOwner + 2 + 10 + 6;
        Assert.Equal(3, wire[srvTarget]);
        Assert.Equal(DnsName.Parse("web.appnet").WireLength, wire.AsSpan(srvTarget).IndexOf((byte)0) + 1);
        Assert.Equal(m.Answers, DnsMessage.Parse(wire).Answers);
    }
}
