namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>The nf_tables address families (NFPROTO_*), as nft names them.</summary>
public enum Family : byte
{
    Inet = 1,
    Ip = 2,
    Arp = 3,
    Netdev = 5,
    Bridge = 7,
    Ip6 = 10,
}

internal static class FamilyNames
{
    public static string Name(this Family family) => family switch
    {
        Family.Inet => "inet",
        Family.Ip => "ip",
        Family.Arp => "arp",
        Family.Netdev => "netdev",
        Family.Bridge => "bridge",
        Family.Ip6 => "ip6",
        _ => $"family{(byte)family}",
    };
}
