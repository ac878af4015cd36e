using System.Globalization;
using System.Net;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;

namespace Mesh.Discovery.Naming;

/// <summary>
/// What the embedded resolver answers from the cluster state, scoped to the networks the querying task is on:
/// <list type="bullet">
/// <item><c>&lt;service&gt;</c> or a service alias → its VIP on each shared network (vip mode) or its task IPs, shuffled (dnsrr);</item>
/// <item><c>tasks.&lt;service or alias&gt;</c> → every task IP; <c>&lt;task name&gt;</c> (<c>web.1</c>) → that task's IP;</item>
/// <item>a task alias → the IPs of every task that carries it;</item>
/// <item>PTR for task IPs and VIPs; AAAA of an existing name → empty NOERROR (there is no IPv6 yet);</item>
/// <item>SRV <c>_&lt;port&gt;._&lt;tcp|udp&gt;.&lt;service&gt;</c> for published or target ports.</item>
/// </list>
/// Single-label names, <c>tasks.*</c> and <c>&lt;service&gt;.*</c> are ours: unknown ones are NXDOMAIN. Everything else is forwarded
/// (an alias may have dots: it is answered, and names below it are not claimed).
/// </summary>
public sealed class ClusterDnsAuthority : IDnsAuthority
{
    /// <summary>Short, so that task churn is seen within a second.</summary>
    public const uint Ttl = 1;

    /// <summary>The index and the revision it was built from, swapped together so a lookup never mixes two states.</summary>
    private Snapshot _current = new(ServiceNameIndex.Empty, -1);

    /// <summary>The store revision of the state it answers from (-1 before the first): a forwarded query's span carries it.</summary>
    public long Revision => Volatile.Read(ref _current).Revision;

    /// <summary>Answers from <paramref name="state"/> from now on (the daemon's DNS follower is the one caller that matters).</summary>
    public void Update(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (ReferenceEquals(state, _builtFrom))
        {
            return; // the same state again (a resync): the index is a function of it, and at 10,000 × 5 costs ~15 MB to build
        }

        Volatile.Write(ref _current, new Snapshot(ServiceNameIndex.Build(state), state.Revision));
        _builtFrom = state;
    }

    /// <summary>The state the index was last built from (its one caller updates from one loop).</summary>
    private ClusterState? _builtFrom;

    public DnsLookupResult Lookup(DnsQuestion question, DnsClientContext context)
    {
        var index = Volatile.Read(ref _current).Index;
        if (index.NamesFor(context.TaskId) is not { } names)
        {
            return DnsLookupResult.NotMine; // a task we no longer know: let upstream answer
        }

        Span<char> text = stackalloc char[DnsName.MaxTextLength];
        var name = text[..question.Name.FormatLower(text)];
        return question.Type switch
        {
            DnsType.PTR => Reverse(index, question.Name, name.ToString(), names.Networks),
            DnsType.SRV => Srv(index, names, question.Name, name.ToString()),
            _ => Forward(index, names, question.Name, question.Type, name),
        };
    }

    private static DnsLookupResult Forward(ServiceNameIndex index, NetworkNames names, DnsName question, DnsType type, ReadOnlySpan<char> name)
    {
        if (names.Find(name) is not { } answer)
        {
            return index.Owns(name) ? DnsLookupResult.NameError() : DnsLookupResult.NotMine;
        }

        if (type is not (DnsType.A or DnsType.ANY))
        {
            return DnsLookupResult.NoData(); // e.g. AAAA: the name exists, with IPv4 addresses only
        }

        return DnsLookupResult.Answer(answer.RecordsFor(question));
    }

    private static DnsLookupResult Reverse(ServiceNameIndex index, DnsName question, string name, string[] networks)
    {
        const string suffix = ".in-addr.arpa";
        if (!name.EndsWith(suffix, StringComparison.Ordinal))
        {
            return DnsLookupResult.NotMine;
        }

        var octets = name[..^suffix.Length].Split('.');
        if (octets.Length != 4 || !IPAddress.TryParse(string.Join('.', octets.Reverse()), out var ip))
        {
            return DnsLookupResult.NotMine;
        }

        foreach (var network in networks)
        {
            if (index.Owners.TryGetValue((network, ip), out var owner))
            {
                return DnsLookupResult.Answer(new DnsRecord(question, DnsType.PTR, DnsClass.IN, Ttl, new NameRecordData(DnsName.Parse(owner))));
            }
        }

        // An address in one of our subnets that nobody holds: we know it has no name.
        return networks.Any(n => index.Subnets[n].Contains(ip)) ? DnsLookupResult.NameError() : DnsLookupResult.NotMine;
    }

    private static DnsLookupResult Srv(ServiceNameIndex index, NetworkNames names, DnsName question, string name)
    {
        var networks = names.Networks;
        var labels = name.Split('.', 3);
        if (labels.Length != 3 || labels[0].Length < 2 || labels[0][0] != '_' || labels[1] is not ("_tcp" or "_udp")
            || !int.TryParse(labels[0].AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            return Forward(index, names, question, DnsType.SRV, name);
        }

        if (index.FindService(labels[2]) is not { } service || !NameResolution.Visible(service, networks))
        {
            return labels[2].Contains('.', StringComparison.Ordinal) ? DnsLookupResult.NotMine : DnsLookupResult.NameError();
        }

        var protocol = labels[1] == "_udp" ? TransportProtocol.Udp : TransportProtocol.Tcp;
        var match = service.Ports.FirstOrDefault(p => p.Protocol == protocol && (p.Published == port || p.Target == port));
        if (match is null)
        {
            return DnsLookupResult.NoData();
        }

        var targets = service.Mode == ServiceMode.Vip
            ? [(Name: service.Name.ToLowerInvariant(), Addresses: NameResolution.Resolve(index, service.Name.ToLowerInvariant(), networks, out _) ?? [])]
            : index.TasksOf(service.Name.ToLowerInvariant()).Select(t => (Name: t.Name.ToLowerInvariant(), Addresses: NameResolution.TaskAddresses([t], networks))).ToList();
        var answers = targets.Select(t => new DnsRecord(question, DnsType.SRV, DnsClass.IN, Ttl, new SrvRecordData(0, 0, (ushort)match.Target, DnsName.Parse(t.Name)))).ToArray();
        var additionals = targets.SelectMany(t => t.Addresses.Select(ip => new DnsRecord(DnsName.Parse(t.Name), DnsType.A, DnsClass.IN, Ttl, new ARecordData(ip)))).ToArray();
        return DnsLookupResult.Answer(answers, additionals);
    }

    private sealed record Snapshot(ServiceNameIndex Index, long Revision);
}
