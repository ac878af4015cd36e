using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;

namespace Mesh.Ingress.Egress;

/// <summary>A local task's leg on the node's gateway bridge: its way out, as a container's leg on docker_gwbridge.</summary>
public sealed record EgressLeg(string Task, string NetnsPath, string HostVeth, string Address);

/// <summary>
/// Which local tasks get a gateway leg, and with which address (a pure function). The address is the task's ingress
/// address moved into the gateway subnet (10.255.a.b → 172.18.a.b): unique on the node without an allocator or
/// any state of its own, since the store never hands an ingress address out twice, and the same after a restart.
/// Offsets 0-2 (the network, the node's gateway, the sandbox) are never a task's ingress address (they are the
/// network, its gateway and the first sandbox's), and are skipped anyway.
/// </summary>
public static class EgressPlanner
{
    /// <summary>The task's end of the leg (the overlay legs are eth0, eth1, … in the service's order).</summary>
    public const string TaskInterface = "gw0";

    /// <summary>The node's end: <c>meg</c> and 8 hex digits of the task's name (interface names are at most 15 characters).</summary>
    public const string HostPrefix = "meg";

    public static IReadOnlyList<EgressLeg> Plan(ClusterState state, string node, NodeNetworkOptions options)
    {
        var ingress = Validate.Cidr("subnet", OverlayNetwork.Ingress.Subnet);
        var gatewayAddress = IPAddress.Parse(options.GatewayAddress);
        var gateway = new Cidr(Cidr.ToUInt32(gatewayAddress) & (options.GatewayPrefixLength == 0 ? 0 : uint.MaxValue << (32 - options.GatewayPrefixLength)), options.GatewayPrefixLength);
        var size = ~gateway.Mask + 1;
        var legs = new List<EgressLeg>();
        foreach (var task in state.Tasks.Where(t => t.Node == node && t.NetnsPath is not null && t.State != TaskState.NodeDown).OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            if (!task.Addresses.TryGetValue(OverlayNetwork.IngressName, out var text) || !IPAddress.TryParse(text, out var address)
                || address.AddressFamily != AddressFamily.InterNetwork || !ingress.Contains(address))
            {
                continue;
            }

            var offset = Cidr.ToUInt32(address) - ingress.Network;
            if (offset < 3 || offset >= size - 1)
            {
                continue;
            }

            legs.Add(new EgressLeg(task.Name, task.NetnsPath!, HostVeth(task.Name),
                string.Create(CultureInfo.InvariantCulture, $"{Cidr.ToAddress(gateway.Network + offset)}/{gateway.PrefixLength}")));
        }

        return legs;
    }

    public static string HostVeth(string task) => HostPrefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(task)).AsSpan(0, 4));
}
