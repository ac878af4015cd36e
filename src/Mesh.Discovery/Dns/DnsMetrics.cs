using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Mesh.Discovery.Dns;

/// <summary>
/// Counters of the embedded DNS server on the meter "Mesh":
/// <c>mesh.dns.queries</c> (tags rcode, transport; one per reply sent, rcode "DROPPED" for queries not answered),
/// <c>mesh.dns.forwarded</c> (tag transport), <c>mesh.dns.upstream.failures</c> (tag reason: timeout, error,
/// busy, none), <c>mesh.dns.truncated</c> (replies sent with TC over UDP), <c>mesh.dns.malformed</c>.
/// </summary>
public sealed class DnsMetrics
{
    public const string MeterName = "Mesh";

    private static readonly Lazy<DnsMetrics> SharedInstance = new(() => new DnsMetrics(new Meter(MeterName)));
    private static readonly string[] RcodeNames = BuildRcodeNames();

    private readonly Counter<long> _queries;
    private readonly Counter<long> _forwarded;
    private readonly Counter<long> _upstreamFailures;
    private readonly Counter<long> _truncated;
    private readonly Counter<long> _malformed;

    /// <summary>Metrics on a process-wide "Mesh" meter.</summary>
    public static DnsMetrics Shared => SharedInstance.Value;

    public DnsMetrics(IMeterFactory factory) : this(factory.Create(MeterName)) { }

    private DnsMetrics(Meter meter)
    {
        _queries = meter.CreateCounter<long>("mesh.dns.queries", "{query}", "DNS queries answered by the embedded resolver, by rcode");
        _forwarded = meter.CreateCounter<long>("mesh.dns.forwarded", "{query}", "DNS queries forwarded upstream");
        _upstreamFailures = meter.CreateCounter<long>("mesh.dns.upstream.failures", "{query}", "Forwarded queries that got no usable upstream answer");
        _truncated = meter.CreateCounter<long>("mesh.dns.truncated", "{reply}", "UDP replies sent with TC set");
        _malformed = meter.CreateCounter<long>("mesh.dns.malformed", "{query}", "Malformed queries (FORMERR or dropped)");
    }

    internal void Reply(DnsResponseCode rcode, DnsTransport transport)
    {
        if (!_queries.Enabled) return;
        var tags = new TagList { { "rcode", RcodeName(rcode) }, { "transport", TransportName(transport) } };
        _queries.Add(1, tags);
    }

    internal void Dropped(DnsTransport transport)
    {
        if (_queries.Enabled) _queries.Add(1, new TagList { { "rcode", "DROPPED" }, { "transport", TransportName(transport) } });
    }

    internal void Forwarded(DnsTransport transport)
    {
        if (_forwarded.Enabled) _forwarded.Add(1, new KeyValuePair<string, object?>("transport", TransportName(transport)));
    }

    internal void UpstreamFailure(string reason)
    {
        if (_upstreamFailures.Enabled) _upstreamFailures.Add(1, new KeyValuePair<string, object?>("reason", reason));
    }

    internal void Truncated() => _truncated.Add(1);

    internal void Malformed() => _malformed.Add(1);

    private static string TransportName(DnsTransport t) => t == DnsTransport.Tcp ? "tcp" : "udp";

    internal static string RcodeName(DnsResponseCode rcode) => (int)rcode < RcodeNames.Length ? RcodeNames[(int)rcode] : "OTHER";

    private static string[] BuildRcodeNames()
    {
        var names = new string[17];
        for (int i = 0; i < names.Length; i++) names[i] = "RCODE" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        names[0] = "NOERROR"; names[1] = "FORMERR"; names[2] = "SERVFAIL"; names[3] = "NXDOMAIN";
        names[4] = "NOTIMP"; names[5] = "REFUSED"; names[16] = "BADVERS";
        return names;
    }
}
