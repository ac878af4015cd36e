using Mesh.Ipvs;

namespace Mesh.Ingress.Kernel;

/// <summary>What this kernel offers, probed without changing anything.</summary>
public static class KernelFeatures
{
    /// <summary>
    /// IPVS is usable when its generic-netlink family ("IPVS") resolves, which is exactly what the ipvs dataplane
    /// needs (the kernel may autoload ip_vs for the lookup when run as root). A failure to even ask counts as no.
    /// </summary>
    public static bool HasIpvs() => IpvsStatus().Available;

    /// <summary>Whether IPVS is usable, and why (shown by <c>mesh doctor</c>).</summary>
    public static (bool Available, string Reason) IpvsStatus()
    {
        try
        {
            return IpvsHandle.IsSupported()
                ? (true, "the IPVS generic-netlink family resolves")
                : (false, "the IPVS generic-netlink family does not resolve: no CONFIG_IP_VS, or ip_vs not loaded");
        }
        catch (Exception e) when (e is Ipvs.Netlink.NetlinkException or DllNotFoundException or EntryPointNotFoundException)
        {
            return (false, "cannot ask the kernel over generic netlink: " + e.Message);
        }
    }
}
