using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Overlay;

/// <summary>
/// What the overlays read of the kernel (<see cref="OverlayKernel.Read"/>: the FDB and neighbour dumps as values, passed
/// as each datagram arrives), against this kernel in a throw-away namespace with iproute2's JSON as the independent
/// reader: 3,000 endpoints (dumps of many datagrams) and entries written by hand read back exactly as <c>bridge -j fdb</c>
/// and <c>ip -j neigh</c> show them, and the next converge leaves exactly the planned entries.
/// </summary>
public sealed class OverlayKernelReadTests : IAsyncLifetime
{
    private readonly ScratchNode _node = new($"ovkr-{Environment.ProcessId}", Local);

    private const string Local = "192.168.62.2";
    private const string Vxlan = "mesh-vx4096";
    private const int Endpoints = 3000;

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

    /// <summary>Endpoint i at 10.255.(i / 250 + 1).(i % 250 + 1), behind one of four VTEPs.</summary>
    private static readonly OverlayPlan Plan = new(
        Local,
        [new OverlayLink("ingress", 4096, "mesh-ov-ingress", Vxlan)],
        Enumerable.Range(0, Endpoints).Select(i => new OverlayPeer(Vxlan, $"10.255.{(i / 250) + 1}.{(i % 250) + 1}", $"192.168.62.{3 + (i % 4)}")).ToList());

    private async Task<List<KernelFdbEntry>> FdbByIproute2() =>
        [.. IpJson.Fdb(await Shell.CheckedAsync("bridge", "-n", Ns, "-j", "fdb", "show", "dev", Vxlan)).OrderBy(e => e.Mac).ThenBy(e => e.DstText, StringComparer.Ordinal)];

    private async Task<List<KernelNeighbour>> NeighboursByIproute2() =>
        [.. IpJson.Neighbours(await Shell.CheckedAsync("ip", "-n", Ns, "-j", "neigh", "show", "dev", Vxlan)).OrderBy(n => n.Ip)];

    [LabFact]
    public async Task Thousands_of_entries_and_foreign_ones_read_back_as_iproute2_shows_them_and_a_converge_leaves_only_the_plan()
    {
        using var kernel = new OverlayKernel(new NetworkNamespacePath(NetnsPath));
        var options = new DaemonOptions { Node = "n1", AdvertiseAddress = Local, ResyncInterval = TimeSpan.Zero };
        var overlays = new OverlayNetworks(kernel, options, NullLogger<OverlayNetworks>.Instance);
        Assert.True(await overlays.ConvergeAsync(kernel.Netns, Plan, CancellationToken.None));
        await overlays.FinishAsync(CancellationToken.None);

        // Someone else's entries on Mesh's device: a flood entry, another VTEP for a wanted MAC, a neighbour that is
        // not permanent and one whose MAC is not the address's.
        await Shell.CheckedAsync("bridge", "-n", Ns, "fdb", "append", "00:00:00:00:00:00", "dev", Vxlan, "dst", "192.168.62.99", "self", "permanent");
        await Shell.CheckedAsync("bridge", "-n", Ns, "fdb", "replace", "02:42:0a:ff:01:01", "dev", Vxlan, "dst", "192.168.62.98", "self", "permanent");
        await Shell.CheckedAsync("ip", "-n", Ns, "neigh", "add", "10.255.200.1", "lladdr", "aa:bb:cc:dd:ee:01", "dev", Vxlan, "nud", "reachable");
        await Shell.CheckedAsync("ip", "-n", Ns, "neigh", "replace", "10.255.1.2", "lladdr", "aa:bb:cc:dd:ee:02", "dev", Vxlan, "nud", "permanent");

        // And someone else's IPv6 VXLAN device with an IPv6 flood entry: not Mesh's, not read (nor changed below).
        await Shell.CheckedAsync("ip", "-n", Ns, "link", "add", "vx-other6", "type", "vxlan", "id", "77", "dstport", "4789", "local", "2001:db8::2");
        await Shell.CheckedAsync("bridge", "-n", Ns, "fdb", "append", "00:00:00:00:00:00", "dev", "vx-other6", "dst", "2001:db8::9", "self", "permanent");

        var read = kernel.Read();
        Assert.Equal([Vxlan], read.Fdb.Keys);
        Assert.Equal([Vxlan], read.Neighbours.Keys);
        var fdb = await FdbByIproute2();
        var neighbours = await NeighboursByIproute2();
        Assert.Equal(Endpoints + 1, fdb.Count);
        Assert.Contains(KernelFdbEntry.Parse("02:42:0a:ff:01:01", "192.168.62.98", true), read.Fdb[Vxlan]);
        Assert.Equal(Endpoints + 1, neighbours.Count);
        Assert.Equal(fdb, read.Fdb[Vxlan].OrderBy(e => e.Mac).ThenBy(e => e.DstText, StringComparer.Ordinal));
        Assert.Equal(neighbours, read.Neighbours[Vxlan].OrderBy(n => n.Ip));
        Assert.Contains(KernelNeighbour.Parse("10.255.200.1", "aa:bb:cc:dd:ee:01", false), read.Neighbours[Vxlan]);

        // The next converge takes the foreign entries away and puts the wrong MAC right; iproute2 then shows the plan.
        Assert.True(await overlays.ConvergeAsync(kernel.Netns, Plan, CancellationToken.None));
        await overlays.FinishAsync(CancellationToken.None);
        Assert.Equal(
            Plan.Peers.Select(p => KernelFdbEntry.Parse(p.Mac, p.Vtep, true)).OrderBy(e => e.Mac),
            await FdbByIproute2());
        Assert.Equal(
            Plan.Peers.Select(p => KernelNeighbour.Parse(p.Ip, p.Mac, true)).OrderBy(n => n.Ip),
            await NeighboursByIproute2());
        Assert.False(await overlays.ConvergeAsync(kernel.Netns, Plan, CancellationToken.None));
        Assert.Contains("00:00:00:00:00:00 dst 2001:db8::9 self permanent", await Shell.CheckedAsync("bridge", "-n", Ns, "fdb", "show", "dev", "vx-other6"), StringComparison.Ordinal);
    }
}
