using Mesh.Ingress.Overlay;

namespace Mesh.Ingress.Tests.Overlay;

/// <summary>
/// A deregistered remote endpoint keeps its overlay entries for the linger (its open connections drain through them),
/// and loses them at once when its address is taken, its node is gone or the network is no longer carried.
/// </summary>
public class DepartedPeersTests
{
    private static readonly TimeSpan Linger = TimeSpan.FromSeconds(60);
    private static readonly OverlayLink Ingress = new("ingress", 4096, "mesh-ov-ingress", "mesh-vx4096");
    private static readonly OverlayLink App = new("appnet", 4097, "mesh-ov-appnet", "mesh-vx4097");
    private static readonly OverlayPeer Sandbox1 = Peer("10.255.0.2", "198.18.0.11");
    private static readonly OverlayPeer Sandbox2 = Peer("10.255.0.3", "198.18.0.12");
    private static readonly OverlayPeer Web1 = Peer("10.255.0.6", "198.18.0.11");
    private static readonly OverlayPeer Web2 = Peer("10.255.0.7", "198.18.0.12");

    private static OverlayPeer Peer(string ip, string vtep, string vxlan = "mesh-vx4096") => new(vxlan, ip, vtep);

    private static OverlayPlan Plan(params OverlayPeer[] peers) => new("198.18.0.13", [Ingress, App], peers);

    private static readonly Func<IReadOnlySet<string>> NoneInUse = () => new HashSet<string>();

    [Fact]
    public void A_peer_that_left_stays_for_the_linger_and_goes_at_the_first_plan_after_it()
    {
        var time = new ManualTime();
        var departed = new DepartedPeers(Linger, time);
        Assert.Equal([Sandbox1, Sandbox2, Web1, Web2], departed.Extend(Plan(Sandbox1, Sandbox2, Web1, Web2), NoneInUse).Peers);

        var without = Plan(Sandbox1, Sandbox2, Web2);
        Assert.Equal([Sandbox1, Sandbox2, Web2, Web1], departed.Extend(without, NoneInUse).Peers);
        time.Advance(Linger - TimeSpan.FromSeconds(1));
        var kept = departed.Extend(without, NoneInUse);
        Assert.Equal([Sandbox1, Sandbox2, Web2, Web1], kept.Peers);
        Assert.Equal(kept.Fingerprint, departed.Extend(without, NoneInUse).Fingerprint); // the same pass again: nothing to do

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([Sandbox1, Sandbox2, Web2], departed.Extend(without, NoneInUse).Peers);
        Assert.Equal(0, departed.Count);
    }

    [Fact]
    public void A_reused_address_belongs_to_its_new_owner_at_once_remote_or_local()
    {
        var time = new ManualTime();
        var departed = new DepartedPeers(Linger, time);
        departed.Extend(Plan(Sandbox1, Sandbox2, Web1, Web2), NoneInUse);

        // web.1's address now belongs to a task on node 2: its entries say node 2, not node 1 as well.
        var moved = Peer(Web1.Ip, "198.18.0.12");
        Assert.Equal([Sandbox1, Sandbox2, moved, Web2], departed.Extend(Plan(Sandbox1, Sandbox2, moved, Web2), NoneInUse).Peers);

        // web.2 leaves and its address goes to a task on this node (not a peer: it is on the bridge).
        departed.Extend(Plan(Sandbox1, Sandbox2, moved), NoneInUse);
        Assert.Equal(1, departed.Count);
        Assert.Equal([Sandbox1, Sandbox2, moved], departed.Extend(Plan(Sandbox1, Sandbox2, moved), () => new HashSet<string> { Web2.Ip }).Peers);
        Assert.Equal(0, departed.Count);
    }

    [Fact]
    public void A_peer_whose_node_left_or_whose_network_is_not_carried_goes_at_once()
    {
        var departed = new DepartedPeers(Linger, new ManualTime());
        var appTask = Peer("10.0.1.5", "198.18.0.12", "mesh-vx4097");
        departed.Extend(Plan(Sandbox1, Sandbox2, Web1, Web2, appTask), NoneInUse);

        // Node 2 left: its sandbox, its task and its app-network task leave together; nothing lingers on its VTEP.
        Assert.Equal([Sandbox1, Web1], departed.Extend(Plan(Sandbox1, Web1), NoneInUse).Peers);

        departed.Extend(Plan(Sandbox1, Sandbox2, Web1, Web2, appTask), NoneInUse);
        var noApp = new OverlayPlan("198.18.0.13", [Ingress], [Sandbox1, Sandbox2, Web1, Web2]);
        Assert.Equal([Sandbox1, Sandbox2, Web1, Web2], departed.Extend(noApp, NoneInUse).Peers);
    }

    [Fact]
    public void A_restarted_daemon_lets_what_it_finds_in_the_kernel_and_no_longer_plans_linger_too()
    {
        var time = new ManualTime();
        var departed = new DepartedPeers(Linger, time);
        var kernel = new OverlayKernelState(
            new Dictionary<string, KernelLink>(),
            new Dictionary<string, IReadOnlyList<KernelFdbEntry>>
            {
                ["mesh-vx4096"] = [KernelFdbEntry.Parse(Sandbox1.Mac, Sandbox1.Vtep, true), KernelFdbEntry.Parse(Web1.Mac, Web1.Vtep, true), KernelFdbEntry.Parse("02:42:0a:ff:00:63", "198.18.0.11", false)],
            },
            new Dictionary<string, IReadOnlyList<KernelNeighbour>>
            {
                // Mesh's entries: permanent, the MAC follows the address. Not Mesh's: another MAC, or not permanent.
                ["mesh-vx4096"] = [KernelNeighbour.Parse(Sandbox1.Ip, Sandbox1.Mac, true), KernelNeighbour.Parse(Web1.Ip, Web1.Mac, true), KernelNeighbour.Parse("10.255.0.99", "02:42:0a:ff:00:63", true), KernelNeighbour.Parse("10.255.0.98", "aa:bb:cc:dd:ee:ff", true)],
                ["eth0"] = [KernelNeighbour.Parse("198.18.0.1", "aa:bb:cc:dd:ee:01", true)],
            });
        departed.Adopt(kernel);
        var plan = Plan(Sandbox1, Sandbox2);
        Assert.Equal([Sandbox1, Sandbox2, Web1], departed.Extend(plan, NoneInUse).Peers);

        departed.Adopt(kernel); // once only: the next read is of what this daemon wrote
        time.Advance(Linger);
        Assert.Equal([Sandbox1, Sandbox2], departed.Extend(plan, NoneInUse).Peers);
    }

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks = 1;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
