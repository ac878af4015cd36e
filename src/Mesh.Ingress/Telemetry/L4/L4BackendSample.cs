namespace Mesh.Ingress.Telemetry.L4;

/// <summary>
/// What the kernel says about one backend at one moment: the connections it tracks to it now, split as IPVS splits
/// them (<paramref name="Active"/>: TCP established; <paramref name="Inactive"/>: every other tracked connection: TCP
/// opening, closing or in TIME_WAIT, and UDP flows) and, where the dataplane keeps them (IPVS), cumulative counters
/// since the real server was added.
/// </summary>
public sealed record L4BackendSample(L4BackendKey Key, long Active, long Inactive)
{
    /// <summary>IPVS's counters (connections scheduled, packets and bytes each way); null on the nftables dataplane.</summary>
    public L4BackendCounters? Counters { get; init; }
}

/// <summary>IPVS_STATS_ATTR_CONNS, INPKTS/OUTPKTS, INBYTES/OUTBYTES of a real server ("in": client to task).</summary>
public sealed record L4BackendCounters(long Opened, long InPackets, long OutPackets, long InBytes, long OutBytes);

/// <summary>Where the samples come from: the dataplane's own view of its backends, read in the ingress sandbox.</summary>
public interface IL4BackendSource
{
    /// <summary>What is read ("conntrack", "ipvs"), for the log.</summary>
    string Name { get; }

    /// <summary>The series this source reports for <paramref name="directory"/> (0 when the kernel has nothing for one).</summary>
    IEnumerable<L4BackendKey> Known(L4BackendDirectory directory);

    /// <summary>One sample per backend of <paramref name="directory"/> that the kernel knows; others are left out.</summary>
    IReadOnlyList<L4BackendSample> Read(L4BackendDirectory directory);
}
