using System.Text.Json;
using Mesh.Ingress.Cni;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Cni;

/// <summary>
/// The legs mesh-cni's ADD makes (<see cref="CniLinks"/>), against this kernel in two throw-away namespaces (the
/// runtime's, holding a bridge as the daemon's, and the container's), with iproute2 and sysctl as the independent
/// readers: the container's end comes up with IPv6 off (<see cref="LinkIpv6"/>), so it has no inet6 address and sends
/// nothing onto the bridge (no MLD report, no router solicitation, no DAD probe).
/// </summary>
public sealed class CniLinksKernelTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` in parallel tests deletes those.
    private readonly string _runtime = $"cnik6-{Environment.ProcessId}";
    private readonly string _container = $"cnik6c-{Environment.ProcessId}";

    private const string Bridge = "br6";

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await DisposeAsync();
            await Shell.CheckedAsync("ip", "netns", "add", _runtime);
            await Shell.CheckedAsync("ip", "netns", "add", _container);
            await Shell.CheckedAsync("ip", "-n", _runtime, "link", "add", Bridge, "type", "bridge");
            await Shell.CheckedAsync("ip", "-n", _runtime, "link", "set", Bridge, "up");
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _container);
            await Shell.RunAsync("ip", "netns", "del", _runtime);
        }
    }

    private static long RxPackets(string json) =>
        JsonDocument.Parse(json).RootElement[0].GetProperty("stats64").GetProperty("rx").GetProperty("packets").GetInt64();

    [LabFact]
    public async Task Add_brings_the_containers_ends_up_with_ipv6_off_and_nothing_of_it_reaches_the_bridge()
    {
        var legs = new[]
        {
            new CniLeg("ingress", "eth0", "mck6t0", Bridge, "10.255.9.2", 16, CniLeg.MacOf("10.255.9.2")),
            new CniLeg("appnet", "eth1", "mck6t1", Bridge, "10.0.9.2", 24, CniLeg.MacOf("10.0.9.2")),
        };
        await new CniLinks($"/run/netns/{_runtime}").AddAsync($"/run/netns/{_container}", legs, 1450, CancellationToken.None);

        foreach (var leg in legs)
        {
            var inside = leg.ContainerInterface;
            Assert.Contains(",UP", await Shell.CheckedAsync("ip", "-n", _container, "link", "show", inside), StringComparison.Ordinal);
            Assert.Contains($"inet {leg.Cidr}", await Shell.CheckedAsync("ip", "-n", _container, "addr", "show", inside), StringComparison.Ordinal);
            Assert.Equal("1", (await Shell.CheckedAsync("ip", "netns", "exec", _container, "sysctl", "-n", LinkIpv6.DisableKey(inside))).Trim());
            Assert.Equal("", (await Shell.CheckedAsync("ip", "-n", _container, "-6", "addr", "show", "dev", inside)).Trim());
        }

        // With IPv6 on, an end joins its multicast groups (MLD reports) as it comes up and sends its DAD probe and
        // router solicitation within a second or two; the container sends nothing else (no IPv4 traffic, no
        // gratuitous ARP), so its host ends on the bridge must have received nothing.
        await Task.Delay(TimeSpan.FromSeconds(3));
        foreach (var leg in legs)
        {
            Assert.Equal(0, RxPackets(await Shell.CheckedAsync("ip", "-n", _runtime, "-j", "-s", "link", "show", "dev", leg.HostInterface)));
        }
    }
}
