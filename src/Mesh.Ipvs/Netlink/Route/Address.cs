using System.Net;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>An interface address (RTM_NEWADDR): <c>ip addr replace IP/PREFIX dev LINK</c>. IPv4 or IPv6.</summary>
public sealed record Address(int LinkIndex, IPAddress Ip, int PrefixLength)
{
    public override string ToString() => $"{Ip}/{PrefixLength} ifindex {LinkIndex}";
}
