using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Nftables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// East-west load balancing inside a task's namespace (the nftables counterpart of Docker's per-container
/// IPVS): a connection from the task to a vip-mode service's VIP on a network the task shares is DNATed,
/// round robin, to that service's task addresses on the same network, keeping the port. One verdict-map
/// lookup by destination address, whatever the number of services.
/// </summary>
public static class TaskServiceTable
{
    public const string Family = "ip";
    public const string Name = "mesh";

    /// <summary>'_' cannot appear in service or network names, so chain names never collide.</summary>
    public const string ChainPrefix = "vip_";

    private const string Skeleton = """
          map vips { type ipv4_addr : verdict; }
          chain output {
            type nat hook output priority -100; policy accept;
            ip daddr vmap @vips
          }
        """;

    public static NftDesiredTable Build(ClusterState state, ServiceTask task)
    {
        var elements = new List<string>();
        var chains = new List<NftChain>();
        var tasks = BackendSet.RunningTasksByService(state);
        foreach (var network in task.Addresses.Keys.Where(n => n != OverlayNetwork.IngressName).Order(StringComparer.Ordinal))
        {
            foreach (var service in state.Services.Where(s => s.Mode == ServiceMode.Vip && s.Vips.ContainsKey(network)).OrderBy(s => s.Name, StringComparer.Ordinal))
            {
                var chain = string.Create(CultureInfo.InvariantCulture, $"{ChainPrefix}{service.Name.ToLowerInvariant()}_{network}");
                elements.Add($"{service.Vips[network]} : goto {chain}");
                chains.Add(new NftChain(chain, IngressSandboxTable.ServiceRules(BackendSet.For(tasks, service, network))));
            }
        }

        return new NftDesiredTable(Family, Name, Skeleton, [new NftMapElements("vips", elements)], chains, ChainPrefix);
    }

    /// <summary>Whether the task needs the table at all (it is on a user overlay where some service has a VIP).</summary>
    public static bool Needed(NftDesiredTable table) => table.Chains.Count > 0;
}
