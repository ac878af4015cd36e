using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Codec;

/// <summary>IPVS_CMD_ATTR_DEST ↔ <see cref="IpvsDestination"/> (IPVS_DEST_ATTR_* in ip_vs.h).</summary>
internal static class DestinationCodec
{
    /// <summary>
    /// Writes the nested destination attribute. <paramref name="full"/> adds forwarding method, weight and
    /// thresholds (required by NEW_DEST/SET_DEST); DEL_DEST only needs address and port.
    /// </summary>
    public static void Encode(NetlinkWriter w, IpvsDestination d, bool full)
    {
        ArgumentNullException.ThrowIfNull(d.Address);
        if (d.Weight < 0) throw new ArgumentException($"destination weight must be >= 0, not {d.Weight}");
        int nest = w.BeginNested(IPVS_CMD_ATTR_DEST);
        AddressCodec.Put(w, IPVS_DEST_ATTR_ADDR, d.Address);
        w.PutBe16(IPVS_DEST_ATTR_PORT, d.Port);
        w.PutU16(IPVS_DEST_ATTR_ADDR_FAMILY, AddressCodec.ToAf(d.AddressFamily));
        if (full)
        {
            w.PutU32(IPVS_DEST_ATTR_FWD_METHOD, (uint)d.ForwardingMethod & IP_VS_CONN_F_FWD_MASK);
            w.PutU32(IPVS_DEST_ATTR_WEIGHT, (uint)d.Weight);
            w.PutU32(IPVS_DEST_ATTR_U_THRESH, d.UpperThreshold);
            w.PutU32(IPVS_DEST_ATTR_L_THRESH, d.LowerThreshold);
            if (d.ForwardingMethod == ForwardingMethod.Tunnel)
            {
                w.PutU8(IPVS_DEST_ATTR_TUN_TYPE, (byte)d.TunnelType);
                w.PutBe16(IPVS_DEST_ATTR_TUN_PORT, d.TunnelPort);
                w.PutU16(IPVS_DEST_ATTR_TUN_FLAGS, (ushort)d.TunnelFlags);
            }
        }
        w.EndNested(nest);
    }

    /// <summary>Decodes the attributes inside IPVS_CMD_ATTR_DEST. <paramref name="serviceFamily"/> is used when the
    /// kernel does not send IPVS_DEST_ATTR_ADDR_FAMILY (kernels before 4.7).</summary>
    public static IpvsDestination Decode(NetlinkAttributes a, System.Net.Sockets.AddressFamily serviceFamily, string operation)
    {
        var family = a.Has(IPVS_DEST_ATTR_ADDR_FAMILY)
            ? AddressCodec.FromAf(a.GetU16(IPVS_DEST_ATTR_ADDR_FAMILY, "IPVS_DEST_ATTR_ADDR_FAMILY"), operation)
            : serviceFamily;
        var fwd = (ForwardingMethod)(a.GetU32OrDefault(IPVS_DEST_ATTR_FWD_METHOD, "IPVS_DEST_ATTR_FWD_METHOD") & IP_VS_CONN_F_FWD_MASK);
        var d = new IpvsDestination(
            AddressCodec.Get(a, IPVS_DEST_ATTR_ADDR, "IPVS_DEST_ATTR_ADDR", family),
            a.GetBe16(IPVS_DEST_ATTR_PORT, "IPVS_DEST_ATTR_PORT"))
        {
            ForwardingMethod = fwd,
            Weight = unchecked((int)a.GetU32OrDefault(IPVS_DEST_ATTR_WEIGHT, "IPVS_DEST_ATTR_WEIGHT")),
            UpperThreshold = a.GetU32OrDefault(IPVS_DEST_ATTR_U_THRESH, "IPVS_DEST_ATTR_U_THRESH"),
            LowerThreshold = a.GetU32OrDefault(IPVS_DEST_ATTR_L_THRESH, "IPVS_DEST_ATTR_L_THRESH"),
            ActiveConnections = a.GetU32OrDefault(IPVS_DEST_ATTR_ACTIVE_CONNS, "IPVS_DEST_ATTR_ACTIVE_CONNS"),
            InactiveConnections = a.GetU32OrDefault(IPVS_DEST_ATTR_INACT_CONNS, "IPVS_DEST_ATTR_INACT_CONNS"),
            PersistentConnections = a.GetU32OrDefault(IPVS_DEST_ATTR_PERSIST_CONNS, "IPVS_DEST_ATTR_PERSIST_CONNS"),
            Stats = StatsCodec.Decode(a, IPVS_DEST_ATTR_STATS64, IPVS_DEST_ATTR_STATS),
        };
        if (fwd == ForwardingMethod.Tunnel)
        {
            d = d with
            {
                TunnelType = a.Has(IPVS_DEST_ATTR_TUN_TYPE) ? (TunnelType)a.GetU8(IPVS_DEST_ATTR_TUN_TYPE, "IPVS_DEST_ATTR_TUN_TYPE") : TunnelType.IpIp,
                TunnelPort = a.Has(IPVS_DEST_ATTR_TUN_PORT) ? a.GetBe16(IPVS_DEST_ATTR_TUN_PORT, "IPVS_DEST_ATTR_TUN_PORT") : (ushort)0,
                TunnelFlags = (TunnelFlags)a.GetU16OrDefault(IPVS_DEST_ATTR_TUN_FLAGS, "IPVS_DEST_ATTR_TUN_FLAGS"),
            };
        }
        return d;
    }
}
