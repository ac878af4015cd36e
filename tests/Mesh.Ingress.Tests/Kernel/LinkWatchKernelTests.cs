using Mesh.Ingress.Tests.EndToEnd;
using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// <see cref="LinkWatch"/> against this kernel, in a throw-away namespace: what it reports of links made, changed and
/// deleted there (through Mesh's rtnetlink and through iproute2), in order; a namespace id freed; an overrun.
/// </summary>
public sealed class LinkWatchKernelTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` in parallel tests deletes those.
    private readonly string _ns = $"lwatch-{Environment.ProcessId}";
    private readonly string _peer = $"lwatch-peer-{Environment.ProcessId}";

    private string NetnsPath => $"/var/run/netns/{_ns}";

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await DisposeAsync();
            await Shell.CheckedAsync("ip", "netns", "add", _ns);
            await Shell.CheckedAsync("ip", "netns", "add", _peer);
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
            await Shell.RunAsync("ip", "netns", "del", _peer);
        }
    }

    [LabFact]
    public async Task Links_made_changed_and_deleted_and_a_freed_namespace_id_are_reported_in_order()
    {
        using var watch = LinkWatch.Open(NetnsPath);
        using var h = RouteHandle.Open(NetnsPath);

        // The kernel queues a notification before it acknowledges the request that made it: nothing to wait for.
        h.AddLink(new Link { Name = "br-w", Kind = LinkKinds.Bridge });
        var bridge = h.RequireLink("br-w");
        h.AddLink(new Link { Name = "leg-w", Kind = LinkKinds.Veth, Peer = new VethPeer("eth0", NamespacePath: $"/var/run/netns/{_peer}") });
        var leg = h.RequireLink("leg-w");
        Assert.NotNull(leg.PeerNetnsId);
        h.ChangeLink(new LinkChange(leg.Index) { MasterIndex = bridge.Index }, "leg-w");
        h.ChangeLink(new LinkChange(leg.Index) { MasterIndex = 0 }, "leg-w");
        var (events, overrun) = watch.Read();
        Assert.False(overrun);
        Assert.Contains(events, e => e is LinkChanged { Link: { Name: "br-w", Kind: LinkKinds.Bridge } l } && l.Index == bridge.Index);
        var legChanges = events.OfType<LinkChanged>().Select(e => e.Link).Where(l => l.Index == leg.Index).ToList();
        Assert.Contains(legChanges, l => l.Name == "leg-w" && l.Kind == LinkKinds.Veth && l.MasterIndex == bridge.Index && l.PeerNetnsId == leg.PeerNetnsId);
        Assert.Equal(0, legChanges[^1].MasterIndex);

        // The bridge reports its port leaving with an AF_BRIDGE RTM_DELLINK: that is no deletion of the link.
        Assert.DoesNotContain(events, e => e is LinkDeleted);

        await Shell.CheckedAsync("ip", "-n", _ns, "link", "del", "leg-w");
        (events, overrun) = watch.Read();
        Assert.False(overrun);
        Assert.Equal(new LinkDeleted(leg.Index, "leg-w"), Assert.Single(events.OfType<LinkDeleted>()));

        // The peer namespace, nothing holding it any more, is freed (by a kernel worker, soon): its id with it.
        await Shell.CheckedAsync("ip", "netns", "del", _peer);
        var seen = new List<LinkEvent>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!seen.Contains(new NetnsIdDeleted(leg.PeerNetnsId!.Value)))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"no RTM_DELNSID {leg.PeerNetnsId} 10 s after ip netns del; seen: {string.Join(", ", seen)}");
            watch.Wait(TimeSpan.FromMilliseconds(200));
            (events, overrun) = watch.Read();
            Assert.False(overrun);
            seen.AddRange(events);
        }
    }

    [LabFact]
    public async Task An_overrun_is_reported_and_only_what_happened_after_it_is_read()
    {
        using var watch = LinkWatch.Open(NetnsPath);
        using var h = RouteHandle.Open(NetnsPath);
        h.AddLink(new Link { Name = "a0", Kind = LinkKinds.Veth, Peer = new VethPeer("b0") });
        var a0 = h.RequireLink("a0");

        // 20,000 changes while nobody reads: far more notifications than the socket's receive buffer (4 MiB) holds.
        var batch = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(batch, Enumerable.Range(0, 10_000).SelectMany(_ => new[] { "link set a0 up", "link set a0 down" }));
            await Shell.CheckedAsync("ip", "-n", _ns, "-batch", batch);
        }
        finally
        {
            File.Delete(batch);
        }

        var (events, overrun) = watch.Read();
        Assert.True(overrun);
        Assert.Empty(events);

        // What was queued before the loss went with it: the next read has only what came after.
        h.ChangeLink(new LinkChange(a0.Index) { Mtu = 1400 }, "a0");
        (events, overrun) = watch.Read();
        Assert.False(overrun);
        Assert.NotEmpty(events);
        Assert.All(events, e => Assert.True(e is LinkChanged { Link.Mtu: 1400 }, $"{e} is not the change made after the overrun"));
    }
}
