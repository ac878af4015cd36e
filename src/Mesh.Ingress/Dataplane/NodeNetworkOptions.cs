namespace Mesh.Ingress.Dataplane;

/// <summary>Names and addresses of what the daemon builds on its node (defaults follow Docker's layout).</summary>
public sealed record NodeNetworkOptions
{
    /// <summary>The bridge between the node and its ingress sandbox (Docker: docker_gwbridge).</summary>
    public string GatewayBridge { get; init; } = "mesh-gwbridge";
    public string GatewayAddress { get; init; } = "172.18.0.1";
    public string SandboxGatewayAddress { get; init; } = "172.18.0.2";
    public int GatewayPrefixLength { get; init; } = 16;

    /// <summary>Network namespace name of the ingress sandbox.</summary>
    public string IngressSandbox { get; init; } = "mesh-ingress";

    /// <summary>The ingress overlay's bridge in the daemon's namespace (made by the overlay runtime).</summary>
    public string IngressBridge { get; init; } = "mesh-ov-ingress";

    public int OverlayMtu { get; init; } = 1450;

    /// <summary>Sandbox leg names: inside the sandbox they are eth0 (ingress) and eth1 (gateway), as in Docker.</summary>
    public string SandboxIngressVeth { get; init; } = "mesh-sbx-ing";
    public string SandboxGatewayVeth { get; init; } = "mesh-sbx-gw";
    public const string SandboxIngressInterface = "eth0";
    public const string SandboxGatewayInterface = "eth1";
}
