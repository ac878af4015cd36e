using Mesh.Ingress.Daemon;

namespace Mesh.Ingress.Dataplane;

/// <summary>Resolves <c>--dataplane auto|ipvs|nftables</c> against what this kernel has, with the reason.</summary>
public static class DataplaneSelector
{
    public static (DataplaneChoice Choice, string Reason) Resolve(DataplaneChoice requested, bool ipvsAvailable)
    {
        return requested switch
        {
            DataplaneChoice.Nftables => (DataplaneChoice.Nftables, "requested with --dataplane nftables"),
            DataplaneChoice.Ipvs when ipvsAvailable => (DataplaneChoice.Ipvs, "requested with --dataplane ipvs"),
            DataplaneChoice.Ipvs => throw new InvalidOperationException(
                "--dataplane ipvs: this kernel has no IPVS (the IPVS generic-netlink family does not resolve); load ip_vs or use --dataplane nftables"),
            _ when ipvsAvailable => (DataplaneChoice.Ipvs, "auto: the IPVS generic-netlink family resolves"),
            _ => (DataplaneChoice.Nftables, "auto: this kernel has no IPVS (the IPVS generic-netlink family does not resolve), using nftables"),
        };
    }
}
