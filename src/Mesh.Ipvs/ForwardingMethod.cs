namespace Mesh.Ipvs;

/// <summary>How IPVS forwards to a destination: IP_VS_CONN_F_* forwarding methods from ip_vs.h.</summary>
public enum ForwardingMethod : uint
{
    /// <summary>IP_VS_CONN_F_MASQ: NAT (ipvsadm -m).</summary>
    Masquerade = 0x0000,
    /// <summary>IP_VS_CONN_F_LOCALNODE: local node.</summary>
    Local = 0x0001,
    /// <summary>IP_VS_CONN_F_TUNNEL: IP-in-IP / GUE / GRE tunnel (ipvsadm -i).</summary>
    Tunnel = 0x0002,
    /// <summary>IP_VS_CONN_F_DROUTE: direct routing (ipvsadm -g).</summary>
    DirectRoute = 0x0003,
    /// <summary>IP_VS_CONN_F_BYPASS: cache bypass.</summary>
    Bypass = 0x0004,
}

/// <summary>IP_VS_CONN_F_TUNNEL_TYPE_* from ip_vs.h.</summary>
public enum TunnelType : byte
{
    IpIp = 0,
    Gue = 1,
    Gre = 2,
}

/// <summary>IP_VS_TUNNEL_ENCAP_FLAG_* from ip_vs.h.</summary>
[Flags]
public enum TunnelFlags : ushort
{
    NoChecksum = 0,
    Checksum = 1 << 0,
    RemoteChecksum = 1 << 1,
}
