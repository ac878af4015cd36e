namespace Mesh.Ingress.Trace;

/// <summary>A task as the store names it: what the kernel's addresses are annotated with.</summary>
public sealed record TracedTask(string Name, string Service, string Node);

/// <summary>
/// One node's kernel state as a trace reads it, captured at one moment: the node's addresses and listening ports,
/// its iptables (<c>iptables-save -t nat</c> / <c>-t filter</c>), the sandbox's <c>nft -j list table ip mesh</c>
/// (null when the table does not exist) or, on the ipvs dataplane, <see cref="SandboxIpvs"/>, and <c>iptables-save</c> of
/// the local tasks reached (by ingress address).
/// <see cref="Tasks"/> (ingress address → task) is the store's, used only to name what the kernel shows.
/// </summary>
public sealed record NodeSnapshot(
    string Node,
    string Dataplane,
    string SandboxNamespace,
    string GatewayBridge,
    IReadOnlySet<string> LocalAddresses,
    IReadOnlySet<(string Protocol, int Port)> LocalListeners,
    string HostNat,
    string HostFilter,
    string? SandboxNft,
    IReadOnlyDictionary<string, TracedTask> Tasks,
    IReadOnlyDictionary<string, string> LocalTaskRules,
    IpvsSandboxView? SandboxIpvs = null)
{
    public bool IsLocal(string address) => LocalAddresses.Contains(address) || address.StartsWith("127.", StringComparison.Ordinal);
}
