using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// The node's ingress sandbox: a network namespace with one leg (eth1) on the gateway bridge and one
/// (eth0) on the ingress overlay's bridge. Built idempotently: every step checks before it changes, and a
/// half-built sandbox left by a crash is completed rather than duplicated.
/// </summary>
public sealed class IngressSandbox(LinkTool links, NodeNetworkOptions options)
{
    public NetworkNamespacePath Netns { get; } = NetworkNamespacePath.Named(options.IngressSandbox);

    public async Task EnsureAsync(string sandboxIngressAddress, CancellationToken ct)
    {
        var self = NetworkNamespacePath.Current;
        var gwPrefix = options.GatewayPrefixLength.ToString(CultureInfo.InvariantCulture);
        var ingressPrefix = Validate.Cidr("subnet", OverlayNetwork.Ingress.Subnet).PrefixLength.ToString(CultureInfo.InvariantCulture);
        var mtu = options.OverlayMtu.ToString(CultureInfo.InvariantCulture);

        if (!await links.LinkExistsAsync(self, options.IngressBridge, ct).ConfigureAwait(false))
        {
            throw new InvalidOperationException(
                $"the ingress overlay bridge '{options.IngressBridge}' does not exist in this namespace: the overlay runtime must create it (VXLAN VNI {OverlayNetwork.Ingress.Vni}) before Mesh can attach the ingress sandbox");
        }

        if (!await links.LinkExistsAsync(self, options.GatewayBridge, ct).ConfigureAwait(false))
        {
            await links.IpAsync(self, ["link", "add", options.GatewayBridge, "type", "bridge"], ct).ConfigureAwait(false);
        }

        await links.IpAsync(self, ["addr", "replace", $"{options.GatewayAddress}/{gwPrefix}", "dev", options.GatewayBridge], ct).ConfigureAwait(false);
        await links.IpAsync(self, ["link", "set", options.GatewayBridge, "up"], ct).ConfigureAwait(false);
        await links.SysctlAsync(self, "net.ipv4.ip_forward", "1", ct).ConfigureAwait(false);
        await links.SysctlAsync(self, $"net.ipv4.conf.{options.GatewayBridge}.route_localnet", "1", ct).ConfigureAwait(false);

        await links.EnsureNamespaceAsync(options.IngressSandbox, ct).ConfigureAwait(false);
        await EnsureLegAsync(options.SandboxGatewayVeth, NodeNetworkOptions.SandboxGatewayInterface, options.GatewayBridge, null, ct).ConfigureAwait(false);
        await EnsureLegAsync(options.SandboxIngressVeth, NodeNetworkOptions.SandboxIngressInterface, options.IngressBridge, mtu, ct).ConfigureAwait(false);

        await links.IpAsync(Netns, ["link", "set", "lo", "up"], ct).ConfigureAwait(false);
        await links.IpAsync(Netns, ["addr", "replace", $"{options.SandboxGatewayAddress}/{gwPrefix}", "dev", NodeNetworkOptions.SandboxGatewayInterface], ct).ConfigureAwait(false);
        await links.IpAsync(Netns, ["addr", "replace", $"{sandboxIngressAddress}/{ingressPrefix}", "dev", NodeNetworkOptions.SandboxIngressInterface], ct).ConfigureAwait(false);
        await links.IpAsync(Netns, ["link", "set", NodeNetworkOptions.SandboxGatewayInterface, "up"], ct).ConfigureAwait(false);
        await links.IpAsync(Netns, ["link", "set", NodeNetworkOptions.SandboxIngressInterface, "up"], ct).ConfigureAwait(false);
        await links.IpAsync(Netns, ["route", "replace", "default", "via", options.GatewayAddress], ct).ConfigureAwait(false);
        await links.SysctlAsync(Netns, "net.ipv4.ip_forward", "1", ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Drops the sandbox's neighbour entries for task addresses that came or went: a freed address handed to a
    /// new task (with a new MAC) would otherwise stay unreachable until the stale entry times out.
    /// </summary>
    public async Task ForgetNeighboursAsync(IEnumerable<string> addresses, CancellationToken ct)
    {
        foreach (var address in addresses)
        {
            await links.TryIpAsync(Netns, ["neigh", "del", address, "dev", NodeNetworkOptions.SandboxIngressInterface], ct).ConfigureAwait(false);
        }
    }

    private async Task EnsureLegAsync(string hostSide, string sandboxSide, string bridge, string? mtu, CancellationToken ct)
    {
        var self = NetworkNamespacePath.Current;
        if (!await links.LinkExistsAsync(self, hostSide, ct).ConfigureAwait(false))
        {
            // A crash between creating the pair and moving it can leave the sandbox end behind.
            await links.TryIpAsync(Netns, ["link", "del", sandboxSide], ct).ConfigureAwait(false);
            var mtuArgs = mtu is null ? Array.Empty<string>() : ["mtu", mtu];
            await links.IpAsync(self, ["link", "add", hostSide, .. mtuArgs, "type", "veth", "peer", "name", sandboxSide, .. mtuArgs, "netns", options.IngressSandbox], ct).ConfigureAwait(false);
        }

        await links.IpAsync(self, ["link", "set", hostSide, "master", bridge, "up"], ct).ConfigureAwait(false);
    }
}
