using Mesh.Ipvs.Netlink.Conntrack;

namespace Mesh.Ingress.Telemetry.L4;

/// <summary>
/// nftables dataplane: a ctnetlink dump of the ingress sandbox's conntrack table, counting the entries the sandbox
/// DNATed to each known task (original destination port = the published port, reply source = the task's ingress
/// address and target port), as IPVS counts its connections: active = TCP in ESTABLISHED, inactive = any other entry
/// (TCP opening, closing, TIME_WAIT; UDP, which IPVS counts as inactive too). At most <paramref name="limit"/> entries are
/// read per dump; past that the counts are low and <see cref="Truncated"/> says so.
/// </summary>
public sealed class ConntrackBackendSource(string sandboxNetns, int limit) : IL4BackendSource
{
    public string Name => "conntrack";

    /// <summary>Entries read per dump at most.</summary>
    public int Limit => limit;

    /// <summary>True when the last dump stopped at the limit.</summary>
    public bool Truncated { get; private set; }

    public IEnumerable<L4BackendKey> Known(L4BackendDirectory directory) => directory?.ByDnat.Values ?? throw new ArgumentNullException(nameof(directory));

    public IReadOnlyList<L4BackendSample> Read(L4BackendDirectory directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var counts = new Dictionary<L4BackendKey, (long Active, long Inactive)>();
        var result = ConntrackTable.Dump(sandboxNetns, limit, entry => Count(directory, entry, counts));
        Truncated = result.Truncated;
        return counts.Select(c => new L4BackendSample(c.Key, c.Value.Active, c.Value.Inactive)).ToList();
    }

    /// <summary>Adds the entry to its backend's count when it is a DNAT to a known task; anything else is not counted.</summary>
    public static void Count(L4BackendDirectory directory, ConntrackEntry entry, Dictionary<L4BackendKey, (long Active, long Inactive)> counts)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(counts);
        if (entry.DnatDestination is not { } to
            || !directory.ByDnat.TryGetValue((entry.Original.Protocol, entry.Original.DestinationPort, to.Address, (ushort)to.Port), out var key))
        {
            return;
        }

        var (active, inactive) = counts.GetValueOrDefault(key);
        counts[key] = entry.TcpState == TcpConntrackState.Established ? (active + 1, inactive) : (active, inactive + 1);
    }
}
