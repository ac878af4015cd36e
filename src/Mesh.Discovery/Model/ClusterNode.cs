namespace Mesh.Discovery.Model;

/// <summary>A node running a Mesh daemon. <see cref="IngressSandboxIp"/> is its sandbox's address on the ingress overlay.</summary>
public sealed record ClusterNode
{
    public required string Name { get; init; }
    public required string AdvertiseAddress { get; init; }
    public string IngressSandboxIp { get; init; } = "";
}
