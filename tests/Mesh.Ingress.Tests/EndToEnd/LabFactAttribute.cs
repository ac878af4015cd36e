namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>A test that needs root and the kernel tools (the lab); skipped, saying why, anywhere else.</summary>
public sealed class LabFactAttribute : FactAttribute
{
    public LabFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root: the lab creates network namespaces";
        }
        else if (!new[] { "/usr/sbin/nft", "/usr/sbin/iptables-nft-save", "/usr/bin/curl", "/usr/sbin/ip" }.All(File.Exists))
        {
            Skip = "needs nftables, iptables, curl and iproute2 (run .ci/run or mesh.sh, which install them)";
        }
    }
}
