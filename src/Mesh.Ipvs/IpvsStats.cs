namespace Mesh.Ipvs;

/// <summary>Service/destination counters (IPVS_STATS_ATTR_*; the 64-bit set when the kernel sends it).</summary>
public sealed record IpvsStats(
    ulong Connections,
    ulong InPackets,
    ulong OutPackets,
    ulong InBytes,
    ulong OutBytes,
    ulong ConnectionsPerSecond,
    ulong InPacketsPerSecond,
    ulong OutPacketsPerSecond,
    ulong InBytesPerSecond,
    ulong OutBytesPerSecond)
{
    public static readonly IpvsStats Zero = new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}
