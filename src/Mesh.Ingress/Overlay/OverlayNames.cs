using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// The names and addresses of what the daemon builds for an overlay on its node. Kept as the lab named them before
/// the daemon owned the overlays: the ingress sandbox, the CNI plugin and the tests find the bridges by these names.
/// </summary>
public static class OverlayNames
{
    /// <summary>Every bridge of a user overlay starts with this (the daemon removes such bridges it no longer wants).</summary>
    public const string BridgePrefix = "mesh-ov-";

    /// <summary>Every VXLAN device of an overlay starts with this.</summary>
    public const string VxlanPrefix = "mesh-vx";

    /// <summary>VXLAN's IANA port, as Docker uses it.</summary>
    public const int VxlanPort = 4789;

    /// <summary>VXLAN over IPv4 costs 50 bytes of every underlay frame (outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14).</summary>
    public const int VxlanOverhead = 50;

    /// <summary>The bridge of a network (interface names are at most 15 characters).</summary>
    public static string Bridge(string network, string ingressBridge) =>
        network == Discovery.Model.OverlayNetwork.IngressName ? ingressBridge : BridgePrefix + (network.Length <= 7 ? network : network[..7]);

    public static string Vxlan(int vni) => string.Create(CultureInfo.InvariantCulture, $"{VxlanPrefix}{vni}");

    /// <summary>
    /// The MAC of an endpoint on an overlay: 02:42 and the four bytes of its IPv4 address (Docker's rule). A task
    /// that comes back at the same address has the same MAC, so the static FDB and neighbour entries never go stale.
    /// </summary>
    public static string Mac(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"overlay addresses are IPv4, not '{address}'", nameof(address));
        }

        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return string.Create(CultureInfo.InvariantCulture, $"02:42:{bytes[0]:x2}:{bytes[1]:x2}:{bytes[2]:x2}:{bytes[3]:x2}");
    }

    public static string Mac(string address) => Mac(IPAddress.Parse(address));

    /// <summary>The same MAC as a value (<see cref="Mesh.Ipvs.Netlink.Route.MacText"/>): 02:42 above the address's 32 bits.</summary>
    public static ulong MacValue(uint ipv4) => DockerMacPrefix | ipv4;

    private const ulong DockerMacPrefix = 0x0242UL << 32;
}
