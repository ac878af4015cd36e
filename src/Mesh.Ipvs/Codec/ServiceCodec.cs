using System.Buffers.Binary;
using System.Net.Sockets;
using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Codec;

/// <summary>IPVS_CMD_ATTR_SERVICE ↔ <see cref="IpvsService"/> (IPVS_SVC_ATTR_* in ip_vs.h).</summary>
internal static class ServiceCodec
{
    /// <summary>
    /// Writes the nested service attribute. <paramref name="full"/> adds the options the kernel requires for
    /// NEW/SET (scheduler, flags, timeout, netmask); without it only the identifying attributes are written
    /// (what DEL_SERVICE, GET_SERVICE, GET_DEST and the destination commands need).
    /// </summary>
    public static void Encode(NetlinkWriter w, IpvsService s, bool full)
    {
        s.Validate();
        int nest = w.BeginNested(IPVS_CMD_ATTR_SERVICE);
        w.PutU16(IPVS_SVC_ATTR_AF, AddressCodec.ToAf(s.AddressFamily));
        if (s.IsFirewallMark)
        {
            w.PutU32(IPVS_SVC_ATTR_FWMARK, s.FirewallMark);
        }
        else
        {
            w.PutU16(IPVS_SVC_ATTR_PROTOCOL, (ushort)s.Protocol);
            AddressCodec.Put(w, IPVS_SVC_ATTR_ADDR, s.Address!);
            w.PutBe16(IPVS_SVC_ATTR_PORT, s.Port);
        }
        if (full)
        {
            w.PutStringZ(IPVS_SVC_ATTR_SCHED_NAME, s.Scheduler);
            if (s.PersistenceEngine is not null) w.PutStringZ(IPVS_SVC_ATTR_PE_NAME, s.PersistenceEngine);
            // struct ip_vs_flags { __u32 flags; __u32 mask; } — mask ~0 replaces all flags (as libipvs does).
            Span<byte> flags = stackalloc byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(flags, (uint)s.Flags & ~IP_VS_SVC_F_HASHED);
            BinaryPrimitives.WriteUInt32LittleEndian(flags[4..], 0xFFFFFFFFu);
            w.PutAttribute(IPVS_SVC_ATTR_FLAGS, flags);
            w.PutU32(IPVS_SVC_ATTR_TIMEOUT, s.Timeout);
            if (s.AddressFamily == AddressFamily.InterNetworkV6) w.PutU32(IPVS_SVC_ATTR_NETMASK, s.EffectiveNetmask); // prefix length, host order
            else w.PutBe32(IPVS_SVC_ATTR_NETMASK, s.EffectiveNetmask);                                                 // __be32 mask
        }
        w.EndNested(nest);
    }

    /// <summary>Decodes the attributes inside IPVS_CMD_ATTR_SERVICE.</summary>
    public static IpvsService Decode(NetlinkAttributes a, string operation)
    {
        var family = AddressCodec.FromAf(a.GetU16(IPVS_SVC_ATTR_AF, "IPVS_SVC_ATTR_AF"), operation);
        uint mark = a.GetU32OrDefault(IPVS_SVC_ATTR_FWMARK, "IPVS_SVC_ATTR_FWMARK");
        var s = new IpvsService { AddressFamily = family, FirewallMark = mark };
        if (mark == 0)
        {
            s = s with
            {
                Protocol = (IpvsProtocol)a.GetU16(IPVS_SVC_ATTR_PROTOCOL, "IPVS_SVC_ATTR_PROTOCOL"),
                Address = AddressCodec.Get(a, IPVS_SVC_ATTR_ADDR, "IPVS_SVC_ATTR_ADDR", family),
                Port = a.Has(IPVS_SVC_ATTR_PORT) ? a.GetBe16(IPVS_SVC_ATTR_PORT, "IPVS_SVC_ATTR_PORT") : (ushort)0,
            };
        }
        uint flags = 0;
        if (a.Has(IPVS_SVC_ATTR_FLAGS))
        {
            var f = a.Fixed(IPVS_SVC_ATTR_FLAGS, "IPVS_SVC_ATTR_FLAGS", 4).Span;
            flags = BinaryPrimitives.ReadUInt32LittleEndian(f) & ~IP_VS_SVC_F_HASHED;
        }
        uint? netmask = null;
        if (a.Has(IPVS_SVC_ATTR_NETMASK))
        {
            netmask = family == AddressFamily.InterNetworkV6
                ? a.GetU32(IPVS_SVC_ATTR_NETMASK, "IPVS_SVC_ATTR_NETMASK")
                : a.GetBe32(IPVS_SVC_ATTR_NETMASK, "IPVS_SVC_ATTR_NETMASK");
        }
        return s with
        {
            Scheduler = a.GetStringOrNull(IPVS_SVC_ATTR_SCHED_NAME) ?? "",
            PersistenceEngine = a.GetStringOrNull(IPVS_SVC_ATTR_PE_NAME),
            Flags = (IpvsServiceFlags)flags,
            Timeout = a.GetU32OrDefault(IPVS_SVC_ATTR_TIMEOUT, "IPVS_SVC_ATTR_TIMEOUT"),
            Netmask = netmask,
            Stats = StatsCodec.Decode(a, IPVS_SVC_ATTR_STATS64, IPVS_SVC_ATTR_STATS),
        };
    }
}
