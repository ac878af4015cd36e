namespace Mesh.Ingress.Kernel;

/// <summary>What this kernel offers, probed without changing anything.</summary>
public static class KernelFeatures
{
    /// <summary>IPVS is usable when its proc entry exists (the module is loaded or built in).</summary>
    public static bool HasIpvs() => File.Exists("/proc/net/ip_vs");
}
