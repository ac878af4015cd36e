using System.Globalization;
using Mesh.Discovery.Model;
using System.Net;
using System.Net.Sockets;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ipvs.Netlink.NfTables;

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

    public static NftDesiredTable Build(ClusterState state, ServiceTask task)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(task);
        var elements = new List<NftElement>();
        var chains = new List<NftChain>();
        var tasks = BackendSet.RunningTasksByService(state);
        foreach (var network in task.Addresses.Keys.Where(n => n != OverlayNetwork.IngressName).Order(StringComparer.Ordinal))
        {
            foreach (var service in state.Services.Where(s => s.Mode == ServiceMode.Vip && s.Vips.ContainsKey(network)).OrderBy(s => s.Name, StringComparer.Ordinal))
            {
                var chain = string.Create(CultureInfo.InvariantCulture, $"{ChainPrefix}{service.Name.ToLowerInvariant()}_{network}");
                var vip = service.Vips[network];
                var address = IPAddress.TryParse(vip, out var parsed) && parsed.AddressFamily == AddressFamily.InterNetwork
                    ? parsed
                    : throw new InvalidOperationException($"service {service.Name}: VIP '{vip}' on network {network} is not an IPv4 address");
                elements.Add(new NftElement($"{vip} : goto {chain}", new SetElement(NftData.Ipv4(address), Verdict: Verdict.Goto(chain))));
                chains.Add(new NftChain(chain, IngressSandboxTable.ServiceRules(BackendSet.For(tasks, service, network))));
            }
        }

        return new NftDesiredTable(
            Ip,
            Name,
            [new NftMap("map vips { type ipv4_addr : verdict; }", new Set(Ip, Name, "vips", SetDataType.Ipv4Address, SetFlags.Map) { DataType = SetDataType.Verdict, UserData = VipsUserData }, elements)],
            [Output],
            chains,
            ChainPrefix);
    }

    private const Family Ip = Mesh.Ipvs.Netlink.NfTables.Family.Ip;

    // nft 1.0.6's set userdata for `type ipv4_addr : verdict` (key big-endian): what nft prints the elements with.
    private static readonly NftData VipsUserData = new(Convert.FromHexString("000402000000010400000000060400000000"));

    private static readonly NftChain Output = new(
        "output",
        [new NftRule("ip daddr vmap @vips", [new Payload(PayloadBase.Network, 16, 4), new Lookup("vips", Registers.R1, Registers.Verdict)])],
        new BaseChain("nat", Hook.Output, BaseChain.PriorityDstNat));

    /// <summary>Whether the task needs the table at all (it is on a user overlay where some service has a VIP).</summary>
    public static bool Needed(NftDesiredTable table) => table.Chains.Count > 0;
}
