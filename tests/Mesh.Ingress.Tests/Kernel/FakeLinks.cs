using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// An <see cref="INetworkLinks"/> that answers reads from fixed state and records every call; a write is recorded as
/// the <c>ip</c> command that would make it, prefixed with the namespace when it is not the daemon's own
/// (e.g. "[/var/run/netns/x] ip link set eth0 up"). With <see cref="Refuse"/>, every call fails as netlink would
/// without the capability.
/// </summary>
internal sealed class FakeLinks : INetworkLinks
{
    public Dictionary<NetworkNamespacePath, IReadOnlyDictionary<string, LinkState>> Links { get; } = [];

    public Dictionary<(NetworkNamespacePath, int Table), IReadOnlyList<RouteEntry>> Routes { get; } = [];

    public Dictionary<(NetworkNamespacePath, string Key), string> Sysctls { get; } = [];

    public bool Refuse { get; init; }

    public List<string> Calls { get; } = [];

    public List<string> Writes { get; } = [];

    public Task<IReadOnlyDictionary<string, LinkState>> ReadLinksAsync(NetworkNamespacePath netns, CancellationToken ct) =>
        Read(netns, "links", Links.GetValueOrDefault(netns) ?? new Dictionary<string, LinkState>());

    public Task<string?> ReadDefaultGatewayAsync(NetworkNamespacePath netns, CancellationToken ct) =>
        Read(netns, "default gateway", (Routes.GetValueOrDefault((netns, 254)) ?? []).FirstOrDefault(r => r.Destination == "default")?.Gateway);

    public Task<IReadOnlyList<RouteEntry>> ReadRoutesAsync(NetworkNamespacePath netns, int table, CancellationToken ct) =>
        Read(netns, $"routes {table}", Routes.GetValueOrDefault((netns, table)) ?? []);

    public Task<IReadOnlyList<(string Source, string Table)>> ReadRulesAsync(NetworkNamespacePath netns, int priority, CancellationToken ct) =>
        Read(netns, $"rules {priority}", (IReadOnlyList<(string, string)>)[]);

    public async Task EnsureSysctlsAsync(NetworkNamespacePath netns, IReadOnlyList<(string Key, string Value)> wanted, CancellationToken ct)
    {
        await Read(netns, "sysctls", true);
        foreach (var (key, value) in wanted.Where(w => Sysctls.GetValueOrDefault((netns, w.Key)) != w.Value))
        {
            await Write(netns, $"sysctl -w {key}={value}");
        }
    }

    public Task DisableIpv6Async(NetworkNamespacePath netns, IReadOnlyList<string> links, CancellationToken ct) =>
        EnsureSysctlsAsync(netns, links.Select(l => (LinkIpv6.DisableKey(l), "1")).ToList(), ct);

    public Task EnsureNamespaceAsync(string name, CancellationToken ct) => Write(NetworkNamespacePath.Current, $"ip netns add {name}");

    public Task AddBridgeAsync(NetworkNamespacePath netns, string name, CancellationToken ct) => Write(netns, $"ip link add {name} type bridge");

    public Task AddVethAsync(NetworkNamespacePath netns, string name, int? mtu, string peer, string? peerMac, NetworkNamespacePath peerNetns, CancellationToken ct)
    {
        var m = mtu is null ? "" : $" mtu {mtu}";
        return Write(netns, $"ip link add {name}{m} type veth peer name {peer}{(peerMac is null ? "" : $" address {peerMac}")}{m} netns {peerNetns.Path}");
    }

    public Task SetLinkAsync(NetworkNamespacePath netns, string name, LinkSettings settings, CancellationToken ct) =>
        Write(netns, $"ip link set {name}{(settings.Mac is { } mac ? $" address {mac}" : "")}{(settings.Master is { } b ? $" master {b}" : "")}{(settings.Up ? " up" : "")}");

    public Task ReplaceAddressAsync(NetworkNamespacePath netns, string cidr, string link, CancellationToken ct) => Write(netns, $"ip addr replace {cidr} dev {link}");

    public Task ReplaceRouteAsync(NetworkNamespacePath netns, RouteEntry route, int table, CancellationToken ct) =>
        Write(netns, $"ip route replace {route.Destination}{(route.Gateway is { } g ? $" via {g}" : "")}{(route.Device is { } d ? $" dev {d}" : "")}{(table == 254 ? "" : $" table {table}")}");

    public Task AddRuleAsync(NetworkNamespacePath netns, string source, int table, int priority, CancellationToken ct) =>
        Write(netns, $"ip rule add from {source} lookup {table} priority {priority}");

    public Task DeleteRuleAsync(NetworkNamespacePath netns, int priority, CancellationToken ct) => Write(netns, $"ip rule del priority {priority}");

    public async Task<bool> TryDeleteLinkAsync(NetworkNamespacePath netns, string name, CancellationToken ct)
    {
        await Write(netns, $"ip link del {name}");
        return true;
    }

    public async Task<bool> TryDeleteNeighbourAsync(NetworkNamespacePath netns, string ip, string link, CancellationToken ct)
    {
        await Write(netns, $"ip neigh del {ip} dev {link}");
        return true;
    }

    private Task<T> Read<T>(NetworkNamespacePath netns, string what, T value)
    {
        Calls.Add($"{Prefix(netns)}read {what}");
        return Refuse ? throw new Mesh.Ipvs.Netlink.NetlinkException($"read {what}", Mesh.Ipvs.Netlink.Errno.EPERM) : Task.FromResult(value);
    }

    private Task Write(NetworkNamespacePath netns, string change)
    {
        var line = Prefix(netns) + change;
        Calls.Add(line);
        Writes.Add(line);
        return Refuse ? throw new Mesh.Ipvs.Netlink.NetlinkException(change, Mesh.Ipvs.Netlink.Errno.EPERM) : Task.CompletedTask;
    }

    private static string Prefix(NetworkNamespacePath netns) => netns.Path is null ? "" : $"[{netns.Path}] ";
}
