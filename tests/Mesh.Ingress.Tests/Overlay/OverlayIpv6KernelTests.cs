using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Overlay;

/// <summary>
/// No IPv6 on the links Mesh makes (<see cref="LinkIpv6"/>), against this kernel in a throw-away namespace, with
/// iproute2 and sysctl as the independent readers: after a converge the overlays' bridges and VXLAN devices have
/// <c>disable_ipv6</c> = 1 and no inet6 address, and a value set back to 0 by hand is put right by the next converge.
/// </summary>
public sealed class OverlayIpv6KernelTests : IAsyncLifetime
{
    private readonly ScratchNode _node = new($"ovk6-{Environment.ProcessId}", Local);

    private const string Local = "192.168.61.2";

    private string Ns => _node.Name;

    private string NetnsPath => _node.NetnsPath;

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await _node.CreateAsync();
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await _node.DeleteAsync();
        }
    }

    private static readonly string[] OverlayLinks = ["mesh-ov-ingress", "mesh-vx4096", "mesh-ov-appnet", "mesh-vx4097"];

    private static readonly OverlayPlan Plan = new(
        Local,
        [new OverlayLink("ingress", 4096, "mesh-ov-ingress", "mesh-vx4096"), new OverlayLink("appnet", 4097, "mesh-ov-appnet", "mesh-vx4097")],
        [new OverlayPeer("mesh-vx4096", "10.255.0.3", "192.168.61.3")]);

    private async Task<string> DisableIpv6(string link) =>
        (await Shell.CheckedAsync("ip", "netns", "exec", Ns, "sysctl", "-n", LinkIpv6.DisableKey(link))).Trim();

    private async Task<string> Inet6(string link) => (await Shell.CheckedAsync("ip", "-n", Ns, "-6", "addr", "show", "dev", link)).Trim();

    [LabFact]
    public async Task A_converge_leaves_the_overlays_links_without_ipv6_and_a_value_set_back_by_hand_is_put_right()
    {
        using var kernel = new OverlayKernel(new NetworkNamespacePath(NetnsPath));
        // A resync at every pass: each converge reads the kernel.
        var options = new DaemonOptions { Node = "n1", AdvertiseAddress = Local, ResyncInterval = TimeSpan.Zero };
        var overlays = new OverlayNetworks(kernel, options, NullLogger<OverlayNetworks>.Instance);

        Assert.True(await overlays.ConvergeAsync(kernel.Netns, Plan, CancellationToken.None));
        await overlays.FinishAsync(CancellationToken.None);
        foreach (var link in OverlayLinks)
        {
            Assert.Contains(",UP", await Shell.CheckedAsync("ip", "-n", Ns, "link", "show", link), StringComparison.Ordinal);
            Assert.Equal("1", await DisableIpv6(link));
            Assert.Equal("", await Inet6(link));
        }

        // By hand: IPv6 on again. The VXLAN device (up, with carrier) gets its link-local address at once: the noise.
        await Shell.CheckedAsync("ip", "netns", "exec", Ns, "sysctl", "-qw", $"{LinkIpv6.DisableKey("mesh-vx4096")}=0");
        await Shell.CheckedAsync("ip", "netns", "exec", Ns, "sysctl", "-qw", $"{LinkIpv6.DisableKey("mesh-ov-ingress")}=0");
        Assert.Contains("inet6 fe80::", await Inet6("mesh-vx4096"), StringComparison.Ordinal);

        // The next converge puts both right (and the address goes with it); the one after has nothing to do.
        Assert.True(await overlays.ConvergeAsync(kernel.Netns, Plan, CancellationToken.None));
        await overlays.FinishAsync(CancellationToken.None);
        foreach (var link in OverlayLinks)
        {
            Assert.Equal("1", await DisableIpv6(link));
            Assert.Equal("", await Inet6(link));
        }

        Assert.False(await overlays.ConvergeAsync(kernel.Netns, Plan, CancellationToken.None));
    }

    [LabFact]
    public async Task The_sandbox_links_switch_turns_ipv6_off_on_the_links_named_only_and_a_link_without_ipv6_is_no_error()
    {
        await Shell.CheckedAsync("ip", "-n", Ns, "link", "add", "leg0", "type", "veth", "peer", "name", "leg1");
        var netns = new NetworkNamespacePath(NetnsPath);

        // "gone0" does not exist: like a kernel without IPv6, there is nothing to disable.
        await new NetlinkLinks().DisableIpv6Async(netns, ["leg0", "gone0"], CancellationToken.None);

        Assert.Equal("1", await DisableIpv6("leg0"));
        Assert.Equal("0", await DisableIpv6("leg1")); // not named: not Mesh's, untouched
    }
}
