using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Dataplane;

/// <summary>Backend choice with one nftables table (<c>ip mesh</c>) in the ingress sandbox and one in each task namespace.</summary>
public sealed class NftablesDataplane(NfTablesExecutor nft, IngressSandbox sandbox) : IDataplane
{
    public string Name => "nftables";

    public Task<bool> ConvergeSandboxAsync(BackendChoice desired, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return nft.ConvergeAsync(sandbox.Netns, desired.Table, Family.Ip, IngressSandboxTable.Name, cancellationToken);
    }

    public Task<bool> ConvergeTaskAsync(NetworkNamespacePath netns, BackendChoice desired, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return nft.ConvergeAsync(netns, desired.Table, Family.Ip, TaskServiceTable.Name, cancellationToken);
    }

    public Task<bool> RemoveFromSandboxAsync(CancellationToken cancellationToken) =>
        nft.ConvergeAsync(sandbox.Netns, null, Family.Ip, IngressSandboxTable.Name, cancellationToken);
}
