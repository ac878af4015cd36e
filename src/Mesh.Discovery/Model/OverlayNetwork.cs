namespace Mesh.Discovery.Model;

/// <summary>A cluster-wide VXLAN overlay network.</summary>
public sealed record OverlayNetwork(string Name, string Subnet, int Vni)
{
    public const string IngressName = "ingress";

    /// <summary>The routing mesh's overlay, as ARCHITECTURE.md's address plan fixes it.</summary>
    public static OverlayNetwork Ingress { get; } = new(IngressName, "10.255.0.0/16", 4096);
}
