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
/// lookup by destination address to a shared chain per number of tasks (<c>pick-rr-N</c>), which looks the task up
/// by (VIP . numgen inc mod N) in one map: per service only map elements, no chain (see <see cref="IngressSandboxTable"/>).
/// </summary>
public static class TaskServiceTable
{
    public const string Family = "ip";
    public const string Name = "mesh";

    public const string BackendsMap = "backends";

    public static NftDesiredTable Build(ClusterState state, ServiceTask task) => Build(state, task, BackendSet.RunningTasksByService(state));

    /// <param name="tasks">The state's <see cref="BackendSet.RunningTasksByService"/>, made once for all local tasks.</param>
    public static NftDesiredTable Build(ClusterState state, ServiceTask task, ILookup<string, ServiceTask> tasks)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(tasks);
        var vips = new List<NftElement>();
        var backends = new List<NftElement>();
        var chains = new SortedDictionary<string, NftChain>(StringComparer.Ordinal);
        var seen = new HashSet<IPAddress>();
        foreach (var network in task.Addresses.Keys.Where(n => n != OverlayNetwork.IngressName).Order(StringComparer.Ordinal))
        {
            foreach (var service in state.Services.Where(s => s.Mode == ServiceMode.Vip && s.Vips.ContainsKey(network)).OrderBy(s => s.Name, StringComparer.Ordinal))
            {
                var vip = service.Vips[network];
                var address = IPAddress.TryParse(vip, out var parsed) && parsed.AddressFamily == AddressFamily.InterNetwork
                    ? parsed
                    : throw new InvalidOperationException($"service {service.Name}: VIP '{vip}' on network {network} is not an IPv4 address");
                var addresses = BackendSet.For(tasks, service, network).Addresses;
                if (addresses.Count == 0 || !seen.Add(address))
                {
                    // No task: the connection is left alone (nothing answers the VIP), as with a chain without a rule.
                    continue;
                }

                var chain = IngressSandboxTable.PickChain("rr", false, addresses.Count);
                if (!chains.ContainsKey(chain))
                {
                    chains[chain] = PickChainOf(chain, addresses.Count);
                }

                vips.Add(new NftElement(new SetElement(NftData.Ipv4(address), Verdict: Verdict.Goto(chain)), ElementText.Vip));
                for (var slot = 0; slot < addresses.Count; slot++)
                {
                    backends.Add(new NftElement(
                        new SetElement(NftData.Concat(NftData.Ipv4(address), NftData.U32((uint)slot)), NftData.Ipv4(addresses[slot])), ElementText.TaskBackend));
                }
            }
        }

        return new NftDesiredTable(
            Ip,
            Name,
            [
                new NftMap("map vips { type ipv4_addr : verdict; }", new Set(Ip, Name, "vips", SetDataType.Ipv4Address, SetFlags.Map) { DataType = SetDataType.Verdict, UserData = VipsUserData }, vips),
                new NftMap($"map {BackendsMap} {{ typeof ip daddr . numgen inc mod 1 : ip daddr; }}",
                    new Set(Ip, Name, BackendsMap, SetDataType.Concat(SetDataType.Ipv4Address, SetDataType.Integer32), SetFlags.Map) { DataType = SetDataType.Ipv4Address, UserData = BackendsUserData },
                    backends) { Slotted = true },
            ],
            [Output],
            chains.Values.ToList());
    }

    private const Family Ip = Mesh.Ipvs.Netlink.NfTables.Family.Ip;

    // nft 1.0.6's set userdata for these declarations (byte order, typeof): what nft prints the elements with.
    private static readonly NftData VipsUserData = new(Convert.FromHexString("000402000000010400000000060400000000"));
    private static readonly NftData BackendsUserData = new(Convert.FromHexString(
        "000400000000010402000000033a00040d00000001320014000407000000010c00040c00000001040c000000011a00041700000001120004000000000104010000000204000000000414000407000000010c00040c00000001040c000000060400000000"));

    private static readonly NftChain Output = new(
        "output",
        [new NftRule("ip daddr vmap @vips", [new Payload(PayloadBase.Network, 16, 4), new Lookup("vips", Registers.R1, Registers.Verdict)])],
        new BaseChain("nat", Hook.Output, BaseChain.PriorityDstNat));

    /// <summary>The VIP in register 1, numgen's slot in 9, the lookup's task address back into 1 (as nft lays it out).</summary>
    private static NftChain PickChainOf(string chain, int modulus) =>
        new(chain, [new NftRule(
            string.Create(CultureInfo.InvariantCulture, $"dnat to ip daddr . numgen inc mod {modulus} map @{BackendsMap}"),
            [
                new Payload(PayloadBase.Network, 16, 4),
                new Numgen((uint)modulus, NumgenType.Incremental, 0, Registers.R32(1)),
                new Lookup(BackendsMap, Registers.R1, Registers.R1),
                new Nat(NatType.Dnat, Ip, Registers.R1),
            ])]);

    /// <summary>Whether the task needs the table at all (some service with a VIP on a network it shares has a task).</summary>
    public static bool Needed(NftDesiredTable table) => table.Chains.Count > 0;
}
