using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// The node's ingress sandbox: a network namespace with one leg (eth1) on the gateway bridge and one
/// (eth0) on the ingress overlay's bridge. Built idempotently: every step checks before it changes, and a
/// half-built sandbox left by a crash is completed rather than duplicated.
/// </summary>
public sealed class IngressSandbox(INetworkLinks links, NodeNetworkOptions options)
{
    private const int MainTable = 254;

    public NetworkNamespacePath Netns { get; } = NetworkNamespacePath.Named(options.IngressSandbox);

    public async Task EnsureAsync(string sandboxIngressAddress, CancellationToken ct)
    {
        // Read first, write only what differs: this runs at every resync, and a read is a few netlink dumps while
        // rewriting everything would churn the kernel (and its netlink listeners) at each pass.
        var self = NetworkNamespacePath.Current;
        var gwPrefix = options.GatewayPrefixLength.ToString(CultureInfo.InvariantCulture);
        var ingressPrefix = Validate.Cidr("subnet", OverlayNetwork.Ingress.Subnet).PrefixLength.ToString(CultureInfo.InvariantCulture);

        var host = await links.ReadLinksAsync(self, ct).ConfigureAwait(false);
        if (!host.ContainsKey(options.IngressBridge))
        {
            throw new InvalidOperationException(
                $"the ingress overlay bridge '{options.IngressBridge}' does not exist in this namespace: the daemon's overlays (VXLAN VNI {OverlayNetwork.Ingress.Vni}) make it before the ingress sandbox attaches to it");
        }

        if (!host.ContainsKey(options.GatewayBridge))
        {
            await links.AddBridgeAsync(self, options.GatewayBridge, ct).ConfigureAwait(false);
        }

        await links.EnsureNamespaceAsync(options.IngressSandbox, ct).ConfigureAwait(false);
        var gatewayLeg = await CreateLegAsync(host, options.SandboxGatewayVeth, NodeNetworkOptions.SandboxGatewayInterface, null, null, ct).ConfigureAwait(false);
        // On the ingress overlay the sandbox is an endpoint like a task: its MAC follows its address (02:42 + IPv4), which
        // is what the other nodes' static FDB and neighbour entries for it say.
        var ingressMac = Overlay.OverlayNames.Mac(sandboxIngressAddress);
        var ingressLeg = await CreateLegAsync(host, options.SandboxIngressVeth, NodeNetworkOptions.SandboxIngressInterface, options.OverlayMtu, ingressMac, ct).ConfigureAwait(false);

        // No IPv6 on the links made for the sandbox, set before any of them is up and put right at every pass (LinkIpv6).
        await links.DisableIpv6Async(self, [options.GatewayBridge, options.SandboxGatewayVeth, options.SandboxIngressVeth], ct).ConfigureAwait(false);
        await links.DisableIpv6Async(Netns, [NodeNetworkOptions.SandboxGatewayInterface, NodeNetworkOptions.SandboxIngressInterface], ct).ConfigureAwait(false);

        await EnsureAddressAsync(self, host, options.GatewayBridge, $"{options.GatewayAddress}/{gwPrefix}", ct).ConfigureAwait(false);
        await EnsureUpAsync(self, host, options.GatewayBridge, ct).ConfigureAwait(false);
        await links.EnsureSysctlsAsync(self, [("net.ipv4.ip_forward", "1"), ($"net.ipv4.conf.{options.GatewayBridge}.route_localnet", "1")], ct).ConfigureAwait(false);
        await AttachLegAsync(host, options.SandboxGatewayVeth, options.GatewayBridge, gatewayLeg, ct).ConfigureAwait(false);
        await AttachLegAsync(host, options.SandboxIngressVeth, options.IngressBridge, ingressLeg, ct).ConfigureAwait(false);

        var sandbox = await links.ReadLinksAsync(Netns, ct).ConfigureAwait(false);
        if (sandbox.TryGetValue(NodeNetworkOptions.SandboxIngressInterface, out var leg) && !string.Equals(leg.Mac, ingressMac, StringComparison.OrdinalIgnoreCase))
        {
            await links.SetLinkAsync(Netns, NodeNetworkOptions.SandboxIngressInterface, new LinkSettings(Mac: ingressMac), ct).ConfigureAwait(false);
        }

        await EnsureUpAsync(Netns, sandbox, "lo", ct).ConfigureAwait(false);
        await EnsureAddressAsync(Netns, sandbox, NodeNetworkOptions.SandboxGatewayInterface, $"{options.SandboxGatewayAddress}/{gwPrefix}", ct).ConfigureAwait(false);
        await EnsureAddressAsync(Netns, sandbox, NodeNetworkOptions.SandboxIngressInterface, $"{sandboxIngressAddress}/{ingressPrefix}", ct).ConfigureAwait(false);
        await EnsureUpAsync(Netns, sandbox, NodeNetworkOptions.SandboxGatewayInterface, ct).ConfigureAwait(false);
        await EnsureUpAsync(Netns, sandbox, NodeNetworkOptions.SandboxIngressInterface, ct).ConfigureAwait(false);
        if (await links.ReadDefaultGatewayAsync(Netns, ct).ConfigureAwait(false) != options.GatewayAddress)
        {
            await links.ReplaceRouteAsync(Netns, new RouteEntry("default", options.GatewayAddress, null), MainTable, ct).ConfigureAwait(false);
        }

        await links.EnsureSysctlsAsync(Netns, [("net.ipv4.ip_forward", "1")], ct).ConfigureAwait(false);

        // mode=host DNATs on the node straight to a local task's ingress address; the node has no leg on the ingress
        // overlay, so it routes the subnet to the sandbox, which forwards it unchanged (see ClientReplyRoutes).
        var subnet = OverlayNetwork.Ingress.Subnet;
        if (!(await links.ReadRoutesAsync(self, MainTable, ct).ConfigureAwait(false)).Any(r => r.Destination == subnet && r.Gateway == options.SandboxGatewayAddress))
        {
            await links.ReplaceRouteAsync(self, new RouteEntry(subnet, options.SandboxGatewayAddress, options.GatewayBridge), MainTable, ct).ConfigureAwait(false);
        }
    }

    private async Task EnsureAddressAsync(NetworkNamespacePath netns, IReadOnlyDictionary<string, LinkState> known, string link, string address, CancellationToken ct)
    {
        if (!known.TryGetValue(link, out var state) || !state.Ipv4Addresses.Contains(address))
        {
            await links.ReplaceAddressAsync(netns, address, link, ct).ConfigureAwait(false);
        }
    }

    private async Task EnsureUpAsync(NetworkNamespacePath netns, IReadOnlyDictionary<string, LinkState> known, string link, CancellationToken ct)
    {
        if (!known.TryGetValue(link, out var state) || !state.Up)
        {
            await links.SetLinkAsync(netns, link, new LinkSettings(Up: true), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Drops the sandbox's neighbour entries for task addresses that came or went: a freed address handed to a
    /// new task (with a new MAC) would otherwise stay unreachable until the stale entry times out.
    /// </summary>
    public async Task ForgetNeighboursAsync(IEnumerable<string> addresses, CancellationToken ct)
    {
        foreach (var address in addresses)
        {
            await links.TryDeleteNeighbourAsync(Netns, address, NodeNetworkOptions.SandboxIngressInterface, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Makes a veth pair between this namespace and the sandbox unless its host end exists; true when it made it (down, on no bridge).</summary>
    private async Task<bool> CreateLegAsync(IReadOnlyDictionary<string, LinkState> host, string hostSide, string sandboxSide, int? mtu, string? mac, CancellationToken ct)
    {
        if (host.ContainsKey(hostSide))
        {
            return false;
        }

        // A crash between creating the pair and moving it can leave the sandbox end behind.
        await links.TryDeleteLinkAsync(Netns, sandboxSide, ct).ConfigureAwait(false);
        await links.AddVethAsync(NetworkNamespacePath.Current, hostSide, mtu, sandboxSide, mac, Netns, ct).ConfigureAwait(false);
        return true;
    }

    private async Task AttachLegAsync(IReadOnlyDictionary<string, LinkState> host, string hostSide, string bridge, bool created, CancellationToken ct)
    {
        if (created || host[hostSide].Master != bridge || !host[hostSide].Up)
        {
            await links.SetLinkAsync(NetworkNamespacePath.Current, hostSide, new LinkSettings(Master: bridge, Up: true), ct).ConfigureAwait(false);
        }
    }
}
