namespace Mesh.Ingress.Kernel;

/// <summary>
/// IPv6 off on the links Mesh makes: the overlays' bridges and VXLAN devices, the ingress sandbox's gateway bridge and
/// both ends of its veths. Mesh's overlays and its sandbox are IPv4 only, yet a link with IPv6 on gets a link-local
/// address when it comes up and sends router solicitations and MLD reports: from a bridge or a VXLAN device, or the
/// sandbox's leg on the ingress overlay, onto the overlay (noise every node sees), and each address and route it makes
/// is a netlink notification to every listener (the lab's link watch had to filter them). Docker does the same for
/// the same reason: libnetwork (osl/interface_linux.go, setInterfaceIPv6) writes
/// <c>/proc/sys/net/ipv6/conf/IFACE/disable_ipv6</c> = 1, inside the interface's namespace and before it is up, on
/// every interface of a network without IPv6, because "if IPv6 isn't disabled, the interface will be put into IPv6
/// multicast groups making it unexpectedly susceptible to NDP cache poisoning, route injection, etc."; and like it
/// (osl/namespace_linux.go, setIPv6), a kernel without IPv6 (no such file) has nothing to disable and is no error.
/// Links Mesh does not make (the tasks' own interfaces, the runtime's) are never touched.
/// </summary>
public static class LinkIpv6
{
    /// <summary>The sysctl that turns IPv6 off on <paramref name="link"/> (written "1").</summary>
    public static string DisableKey(string link) => $"net.ipv6.conf.{link}.disable_ipv6";

    /// <summary>Whether <paramref name="link"/>'s name can be a sysctl key's part (a name with a dot cannot, nor can any of Mesh's).</summary>
    public static bool HasKey(string link) => link.Length > 0 && link.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}
