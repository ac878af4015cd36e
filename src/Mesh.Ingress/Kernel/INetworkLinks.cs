namespace Mesh.Ingress.Kernel;

/// <summary>
/// The links, addresses, routes, rules, neighbours and sysctls the daemon reads and changes in its own namespace and in
/// the ingress sandbox's and the tasks' (<see cref="NetlinkLinks"/>: rtnetlink and /proc/sys, no process). Each
/// write is one change; callers read first and write only what differs. Failures name the operation, the object and
/// the namespace (<see cref="Mesh.Ipvs.Netlink.NetlinkException"/>, <see cref="IOException"/>).
/// </summary>
public interface INetworkLinks
{
    /// <summary>Every link of the namespace with its state, master, IPv4 addresses (CIDR) and MAC.</summary>
    Task<IReadOnlyDictionary<string, LinkState>> ReadLinksAsync(NetworkNamespacePath netns, CancellationToken ct);

    /// <summary>The gateway of the namespace's IPv4 default route (main table), or null when it has none.</summary>
    Task<string?> ReadDefaultGatewayAsync(NetworkNamespacePath netns, CancellationToken ct);

    /// <summary>The IPv4 unicast routes of one table (254: main).</summary>
    Task<IReadOnlyList<RouteEntry>> ReadRoutesAsync(NetworkNamespacePath netns, int table, CancellationToken ct);

    /// <summary>The IPv4 policy rules at one priority, as (source, table) pairs (source "" for "from all", an address without /32).</summary>
    Task<IReadOnlyList<(string Source, string Table)>> ReadRulesAsync(NetworkNamespacePath netns, int priority, CancellationToken ct);

    /// <summary>Sets the sysctls that differ, after one read of them all.</summary>
    Task EnsureSysctlsAsync(NetworkNamespacePath netns, IReadOnlyList<(string Key, string Value)> wanted, CancellationToken ct);

    /// <summary>
    /// IPv6 off on each of <paramref name="links"/> where it is on, after one read (<see cref="LinkIpv6"/>): only links
    /// Mesh made; a kernel without IPv6 has nothing to disable.
    /// </summary>
    Task DisableIpv6Async(NetworkNamespacePath netns, IReadOnlyList<string> links, CancellationToken ct);

    /// <summary>Creates the named network namespace (/var/run/netns/NAME) unless it exists.</summary>
    Task EnsureNamespaceAsync(string name, CancellationToken ct);

    /// <summary><c>ip link add NAME type bridge</c>.</summary>
    Task AddBridgeAsync(NetworkNamespacePath netns, string name, CancellationToken ct);

    /// <summary><c>ip link add NAME [mtu N] type veth peer name PEER [address MAC] [mtu N] netns PEER_NETNS</c>.</summary>
    Task AddVethAsync(NetworkNamespacePath netns, string name, int? mtu, string peer, string? peerMac, NetworkNamespacePath peerNetns, CancellationToken ct);

    /// <summary><c>ip link set NAME [address MAC] [master BRIDGE] [up]</c>.</summary>
    Task SetLinkAsync(NetworkNamespacePath netns, string name, LinkSettings settings, CancellationToken ct);

    /// <summary><c>ip addr replace CIDR dev LINK</c>.</summary>
    Task ReplaceAddressAsync(NetworkNamespacePath netns, string cidr, string link, CancellationToken ct);

    /// <summary><c>ip route replace DESTINATION|default [via GATEWAY] [dev LINK] [table T]</c>.</summary>
    Task ReplaceRouteAsync(NetworkNamespacePath netns, RouteEntry route, int table, CancellationToken ct);

    /// <summary><c>ip rule add from SOURCE lookup TABLE priority PRIORITY</c>.</summary>
    Task AddRuleAsync(NetworkNamespacePath netns, string source, int table, int priority, CancellationToken ct);

    /// <summary><c>ip rule del priority PRIORITY</c> (one rule of that priority).</summary>
    Task DeleteRuleAsync(NetworkNamespacePath netns, int priority, CancellationToken ct);

    /// <summary><c>ip link del NAME</c>; false when there was no such link.</summary>
    Task<bool> TryDeleteLinkAsync(NetworkNamespacePath netns, string name, CancellationToken ct);

    /// <summary><c>ip neigh del IP dev LINK</c>; false when there was no such entry (or link).</summary>
    Task<bool> TryDeleteNeighbourAsync(NetworkNamespacePath netns, string ip, string link, CancellationToken ct);
}

/// <summary>What <see cref="INetworkLinks.SetLinkAsync"/> changes: a MAC, a bridge to be a port of, up.</summary>
public sealed record LinkSettings(string? Mac = null, string? Master = null, bool Up = false);

/// <summary>One route: destination (<c>default</c> or a prefix), gateway, device.</summary>
public sealed record RouteEntry(string Destination, string? Gateway, string? Device);

/// <summary>One link of a namespace: administratively up, its bridge, its IPv4 addresses as CIDR, its MAC.</summary>
public sealed record LinkState(string Name, bool Up, string? Master, IReadOnlyList<string> Ipv4Addresses, string? Mac = null);
