using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Nftables;

namespace Mesh.Ingress.Dataplane;

/// <summary>Backend choice with one nftables table (<c>ip mesh</c>) in the ingress sandbox.</summary>
public sealed class NftablesDataplane(NftExecutor nft, IngressSandbox sandbox) : IDataplane
{
    public string Name => "nftables";

    public async Task<bool> ApplyAsync(ClusterState state, ClusterNode node, CancellationToken cancellationToken)
    {
        var desired = IngressSandboxTable.Build(state, node.IngressSandboxIp);
        var actual = await nft.ReadAsync(sandbox.Netns, IngressSandboxTable.Family, IngressSandboxTable.Name, cancellationToken).ConfigureAwait(false);
        var script = NftPlanner.Plan(desired, actual);
        if (script is null)
        {
            return false;
        }

        await nft.ApplyAsync(sandbox.Netns, script, cancellationToken).ConfigureAwait(false);
        return true;
    }
}
