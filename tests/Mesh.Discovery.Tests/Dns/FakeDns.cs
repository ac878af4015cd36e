using System.Net;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>
/// A small authority owning the zone "mesh": web.mesh → 2 A records, big.mesh → 200 A records (forces TC),
/// tasks.web.mesh → 3 A records, _http._tcp.web.mesh SRV, v4only.mesh AAAA → NoData, boom.mesh → throws,
/// anything else under mesh → NXDOMAIN, everything else → NotMine.
/// </summary>
internal sealed class FakeAuthority : IDnsAuthority
{
    private static readonly DnsName Zone = DnsName.Parse("mesh");
    public int Calls;
    public DnsClientContext LastContext;

    public DnsLookupResult Lookup(DnsQuestion q, DnsClientContext ctx)
    {
        Interlocked.Increment(ref Calls);
        LastContext = ctx;
        if (!q.Name.IsSubdomainOf(Zone)) return DnsLookupResult.NotMine;
        string name = q.Name.ToString().ToLowerInvariant();
        bool wantsA = q.Type is DnsType.A or DnsType.ANY;
        switch (name)
        {
            case "web.mesh":
                return wantsA ? DnsLookupResult.Answer(A(q.Name, "10.0.1.2"), A(q.Name, "10.0.1.3")) : DnsLookupResult.NoData();
            case "tasks.web.mesh":
                return wantsA ? DnsLookupResult.Answer(A(q.Name, "10.0.1.4"), A(q.Name, "10.0.1.5"), A(q.Name, "10.0.1.6")) : DnsLookupResult.NoData();
            case "big.mesh":
                return wantsA
                    ? DnsLookupResult.Answer(Enumerable.Range(0, 200).Select(i => A(q.Name, $"10.1.{i / 250}.{i % 250 + 1}")).ToArray())
                    : DnsLookupResult.NoData();
            case "_http._tcp.web.mesh":
                return q.Type is DnsType.SRV
                    ? DnsLookupResult.Answer([DnsRecord.Srv(q.Name, 0, 0, 0, 80, DnsName.Parse("web.1.mesh"))], [A(DnsName.Parse("web.1.mesh"), "10.0.1.4")])
                    : DnsLookupResult.NoData();
            case "v4only.mesh":
                return q.Type == DnsType.A ? DnsLookupResult.Answer(A(q.Name, "10.0.1.9")) : DnsLookupResult.NoData();
            case "boom.mesh":
                throw new InvalidOperationException("authority bug");
            case "4.1.0.10.in-addr.arpa.mesh":
                return DnsLookupResult.Answer(DnsRecord.Ptr(q.Name, 0, DnsName.Parse("web.1.mesh")));
            default:
                return DnsLookupResult.NameError([new DnsRecord(Zone, DnsType.SOA, DnsClass.IN, 0,
                    new SoaRecordData(DnsName.Parse("ns.mesh"), DnsName.Parse("hostmaster.mesh"), 1, 60, 60, 60, 0))]);
        }
    }

    private static DnsRecord A(DnsName n, string ip) => DnsRecord.A(n, 0, IPAddress.Parse(ip));
}

/// <summary>
/// A forwarder that answers synchronously: names starting with "fail" fail, "huge" gets a ≈3,500-byte reply, a label
/// containing "giant" ≈11,500 bytes, and one starting with "nx" has rcode NXDOMAIN.
/// </summary>
internal sealed class FakeForwarder : IDnsForwarder
{
    public bool HasUpstreams => true;
    public string UpstreamsKey => "fake";

    public ValueTask<DnsForwardResult> ForwardAsync(ReadOnlyMemory<byte> query, DnsQuestion question, bool tcp, CancellationToken ct)
    {
        var label = question.Name.IsRoot ? "" : System.Text.Encoding.ASCII.GetString(question.Name.GetLabel(0));
        if (label.StartsWith("fail", StringComparison.OrdinalIgnoreCase)) return new(new DnsForwardResult(null, "timeout"));
        var m = new DnsMessage { Id = 7, IsResponse = true, RecursionAvailable = true, RecursionDesired = true };
        if (label.StartsWith("nx", StringComparison.OrdinalIgnoreCase)) m.ResponseCode = DnsResponseCode.NXDomain;
        m.Questions.Add(question);
        // Like a real upstream: EDNS in the reply iff the query had it.
        if (DnsMessage.TryParse(query.Span, out var q) && q.Edns is not null) m.Edns = new DnsEdns { UdpPayloadSize = 1232 };
        int count = label.StartsWith("huge", StringComparison.OrdinalIgnoreCase) ? 150
            : label.Contains("giant", StringComparison.OrdinalIgnoreCase) ? 500 // ≈ 11.5 KB, over any UDP limit we allow
            : 1;
        for (int i = 0; i < count; i++) m.Answers.Add(DnsRecord.Txt(question.Name, 60, new string('x', 10)));
        return new(new DnsForwardResult(m.ToArray(), null));
    }
}
