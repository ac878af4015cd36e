using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Cni;

/// <summary>
/// One leg of a container on one overlay: a veth pair whose host end sits on the network's bridge and whose
/// container end carries the task's address on that network, with the MAC derived from it (02:42 + IPv4, as
/// Docker's overlay does, so FDB and neighbour entries never go stale).
/// </summary>
public sealed record CniLeg(string Network, string ContainerInterface, string HostInterface, string Bridge, string Address, int PrefixLength, string Mac)
{
    public string Cidr => string.Create(CultureInfo.InvariantCulture, $"{Address}/{PrefixLength}");

    /// <summary>
    /// The host ends of a container's legs are named from its ID alone (<c>mc</c> + 8 hex digits of its SHA-256 +
    /// the leg's index), so DEL finds them without asking anyone, even when the task is already gone from the store.
    /// </summary>
    public static string HostPrefix(string containerId) =>
        "mc" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(containerId)).AsSpan(0, 4));

    public static string MacOf(string address) =>
        "02:42:" + string.Join(':', IPAddress.Parse(address).GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    /// <summary>
    /// The legs of a task, one per network in the order the service joins them (ingress first when it publishes):
    /// the first inside the container is named <paramref name="interfaceName"/> (CNI_IFNAME), the next ones count on
    /// from its trailing number (eth0, eth1, …; a name without one gets 1, 2, … appended).
    /// </summary>
    public static IReadOnlyList<CniLeg> Plan(string containerId, string interfaceName, ClusterState state, ServiceTask task, Func<string, string> bridgeOf)
    {
        var service = state.Services.FirstOrDefault(s => s.Name == task.Service)
            ?? throw new CniException(CniErrorCode.RegistrationRefused, $"service '{task.Service}' of task '{task.Name}' does not exist");
        var prefix = HostPrefix(containerId);
        var legs = new List<CniLeg>();
        foreach (var (network, index) in Discovery.Store.StateTransitions.AttachedNetworks(service).Select((n, i) => (n, i)))
        {
            var overlay = Discovery.Store.StateTransitions.FindNetwork(state, network)
                ?? throw new CniException(CniErrorCode.RegistrationRefused, $"network '{network}' of service '{service.Name}' does not exist");
            var address = task.Addresses.TryGetValue(network, out var a) ? a
                : throw new CniException(CniErrorCode.RegistrationRefused, $"task '{task.Name}' has no address on network '{network}'");
            var inside = InterfaceAt(interfaceName, index);
            legs.Add(new CniLeg(network, inside, prefix + index.ToString(CultureInfo.InvariantCulture), bridgeOf(network), address,
                Validate.Cidr("subnet", overlay.Subnet).PrefixLength, MacOf(address)));
        }

        return legs;
    }

    public static string InterfaceAt(string first, int index)
    {
        if (index == 0)
        {
            return first;
        }

        var digits = first.Length - first.AsSpan().TrimEnd("0123456789").Length;
        var name = digits is > 0 and < 10
            ? first[..^digits] + (long.Parse(first[^digits..], CultureInfo.InvariantCulture) + index).ToString(CultureInfo.InvariantCulture)
            : first + index.ToString(CultureInfo.InvariantCulture);
        CniEnvironment.CheckInterfaceName("CNI_IFNAME", name);
        return name;
    }
}
