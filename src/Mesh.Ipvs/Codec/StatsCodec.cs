using System.Buffers.Binary;
using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Codec;

/// <summary>Nested IPVS_STATS_ATTR_* (IPVS_*_ATTR_STATS: u32 counters, u64 bytes; IPVS_*_ATTR_STATS64: all u64).</summary>
internal static class StatsCodec
{
    /// <summary>Prefers the 64-bit set; null when neither is present.</summary>
    public static IpvsStats? Decode(NetlinkAttributes parent, ushort stats64Type, ushort statsType)
    {
        var n = parent.GetNestedOrNull(stats64Type) ?? parent.GetNestedOrNull(statsType);
        if (n is null) return null;
        return new IpvsStats(
            Counter(n, IPVS_STATS_ATTR_CONNS),
            Counter(n, IPVS_STATS_ATTR_INPKTS),
            Counter(n, IPVS_STATS_ATTR_OUTPKTS),
            Counter(n, IPVS_STATS_ATTR_INBYTES),
            Counter(n, IPVS_STATS_ATTR_OUTBYTES),
            Counter(n, IPVS_STATS_ATTR_CPS),
            Counter(n, IPVS_STATS_ATTR_INPPS),
            Counter(n, IPVS_STATS_ATTR_OUTPPS),
            Counter(n, IPVS_STATS_ATTR_INBPS),
            Counter(n, IPVS_STATS_ATTR_OUTBPS));
    }

    /// <summary>Encodes a 64-bit stats nest (used by tests to fabricate kernel replies).</summary>
    public static void Encode(NetlinkWriter w, ushort nestType, IpvsStats s)
    {
        int t = w.BeginNested(nestType);
        w.PutU64(IPVS_STATS_ATTR_CONNS, s.Connections);
        w.PutU64(IPVS_STATS_ATTR_INPKTS, s.InPackets);
        w.PutU64(IPVS_STATS_ATTR_OUTPKTS, s.OutPackets);
        w.PutU64(IPVS_STATS_ATTR_INBYTES, s.InBytes);
        w.PutU64(IPVS_STATS_ATTR_OUTBYTES, s.OutBytes);
        w.PutU64(IPVS_STATS_ATTR_CPS, s.ConnectionsPerSecond);
        w.PutU64(IPVS_STATS_ATTR_INPPS, s.InPacketsPerSecond);
        w.PutU64(IPVS_STATS_ATTR_OUTPPS, s.OutPacketsPerSecond);
        w.PutU64(IPVS_STATS_ATTR_INBPS, s.InBytesPerSecond);
        w.PutU64(IPVS_STATS_ATTR_OUTBPS, s.OutBytesPerSecond);
        w.EndNested(t);
    }

    private static ulong Counter(NetlinkAttributes n, ushort type)
    {
        if (!n.TryGet(type, out var v)) return 0;
        return v.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(v.Span)
            : v.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(v.Span)
            : throw new NetlinkProtocolException("IPVS stats", $"counter {type} is {v.Length} bytes");
    }
}
