using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Dataplane;

/// <summary>Backend choice with one nftables table (<c>ip mesh</c>) in the ingress sandbox and one in each task namespace.</summary>
/// <param name="health">This node's health verdicts (none: every task is a backend).</param>
public sealed class NftablesDataplane(NfTablesExecutor nft, IngressSandbox sandbox, HealthChecks.TaskHealthMonitor? health = null) : IDataplane
{
    // Keeps each service's elements between passes, so a change is planned by the services it touched.
    private readonly IngressSandboxTable.Builder _sandboxTable = new();

    public string Name => "nftables";

    public Task<bool> ApplyAsync(ClusterState state, ClusterNode node, CancellationToken cancellationToken) =>
        nft.ConvergeAsync(sandbox.Netns, _sandboxTable.Build(state, node.IngressSandboxIp, node.Name, health?.Snapshot), Family.Ip, IngressSandboxTable.Name, cancellationToken);

    public Task<bool> ApplyTaskAsync(ClusterState state, ServiceTask? task, NetworkNamespacePath netns, CancellationToken cancellationToken)
    {
        var table = task is null ? null : TaskServiceTable.Build(state, task);
        return nft.ConvergeAsync(netns, table is not null && TaskServiceTable.Needed(table) ? table : null, Family.Ip, TaskServiceTable.Name, cancellationToken);
    }

    public Task<bool> RemoveFromSandboxAsync(CancellationToken cancellationToken) =>
        nft.ConvergeAsync(sandbox.Netns, null, Family.Ip, IngressSandboxTable.Name, cancellationToken);
}
