using System.Diagnostics;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Tests.EndToEnd;
using Mesh.Ipvs.Netlink.Route;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// <see cref="TaskLegs"/> against this kernel, with a throw-away namespace as the node (a Mesh bridge in it) and task
/// namespaces with legs on that bridge; iproute2 makes and reads the links, as a runtime would. The case that broke
/// the first version: a deleted task namespace's id, freed with it, given to a new task's namespace before the daemon
/// looked at the new one, must not cost the new task its legs.
/// </summary>
public sealed class TaskLegsKernelTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` in parallel tests deletes those.
    private readonly string _node = $"tlegs-{Environment.ProcessId}";
    private readonly string _a = $"tlegs-a-{Environment.ProcessId}";
    private readonly string _b = $"tlegs-b-{Environment.ProcessId}";

    private const string Bridge = OverlayNames.BridgePrefix + "t";

    private static string PathOf(string ns) => $"/var/run/netns/{ns}";

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await DisposeAsync();
            await Shell.CheckedAsync("ip", "netns", "add", _node);
            await Shell.CheckedAsync("ip", "-n", _node, "link", "add", Bridge, "type", "bridge");
            await Shell.CheckedAsync("ip", "-n", _node, "link", "set", Bridge, "up");
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            foreach (var ns in new[] { _node, _a, _b })
            {
                await Shell.RunAsync("ip", "netns", "del", ns);
            }
        }
    }

    [LabFact]
    public async Task A_deleted_namespace_loses_only_its_recorded_legs_even_when_its_id_went_to_a_new_namespace()
    {
        using var legs = new TaskLegs(new NodeNetworkOptions(), NullLogger<TaskLegs>.Instance, PathOf(_node));
        using var node = RouteHandle.Open(PathOf(_node));

        // Task A, one leg on the bridge: recorded, known by the id the kernel gave A in the node.
        await AddTaskAsync(_a, "leg-a");
        legs.Learn([PathOf(_a)]);
        Assert.Equal(["leg-a"], legs.LegsOf(PathOf(_a)).Select(l => l.Name));
        var idOfA = node.RequireLink("leg-a").PeerNetnsId;
        Assert.NotNull(idOfA);

        // A is deleted and, with nothing holding it, freed with its leg: its id is free again.
        await Shell.CheckedAsync("ip", "netns", "del", _a);
        var clock = Stopwatch.StartNew();
        while (node.GetLink("leg-a") is not null)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{_a} not freed after 10 s (something holds it)");
            await Task.Delay(20);
        }

        // Task B appears before the daemon looked at it: the kernel gives it the lowest free id, A's.
        await AddTaskAsync(_b, "leg-b");
        Assert.Equal(idOfA, node.RequireLink("leg-b").PeerNetnsId);

        // The pass that sees A gone: B's leg, whose other end is in the namespace with A's old id, stays.
        Assert.Empty(legs.Remove(PathOf(_a)));
        Assert.NotNull(node.GetLink("leg-b"));
        Assert.DoesNotContain(PathOf(_a), legs.Namespaces);

        // B itself: a leg attached after it was first recorded is recorded at the next look, and when B is deleted
        // while something still holds it (here the test's netlink socket in it), both legs go at once; a veth into B
        // on no bridge is not a leg and stays until B itself goes.
        legs.Learn([PathOf(_b)]);
        await Shell.CheckedAsync("ip", "-n", _node, "link", "add", "leg-b2", "master", Bridge, "type", "veth", "peer", "name", "eth1", "netns", _b);
        await Shell.CheckedAsync("ip", "-n", _node, "link", "add", "wit-b", "type", "veth", "peer", "name", "wit0", "netns", _b);
        legs.Learn([PathOf(_b)]);
        Assert.Equal(["leg-b", "leg-b2"], legs.LegsOf(PathOf(_b)).Select(l => l.Name).Order());
        using (RouteHandle.Open(PathOf(_b)))
        {
            await Shell.CheckedAsync("ip", "netns", "del", _b);
            Assert.Equal(["leg-b", "leg-b2"], legs.Remove(PathOf(_b)).Select(l => l.Name).Order());
            Assert.Null(node.GetLink("leg-b"));
            Assert.Null(node.GetLink("leg-b2"));
            Assert.NotNull(node.GetLink("wit-b"));
        }
    }

    [LabFact]
    public async Task A_leg_attached_just_before_its_namespace_is_deleted_is_recorded_as_the_kernel_reports_it_and_removed()
    {
        using var legs = new TaskLegs(new NodeNetworkOptions(), NullLogger<TaskLegs>.Instance, PathOf(_node));
        using var node = RouteHandle.Open(PathOf(_node));
        var bridge = node.RequireLink(Bridge);

        // The pass that first sees task A: its runtime has not attached a leg yet.
        await Shell.CheckedAsync("ip", "netns", "add", _a);
        legs.Learn([PathOf(_a)]);
        Assert.Empty(legs.LegsOf(PathOf(_a)));

        // Then, with no pass in between, the runtime attaches a leg and deletes the namespace, which something still
        // holds (here the test's netlink socket in it, in the lab a task's draining connections): the leg stays on the
        // bridge, answering for the task's address, until the daemon removes it.
        using (RouteHandle.Open(PathOf(_a)))
        {
            var clock = Stopwatch.StartNew();
            node.AddLink(new Link { Name = "leg-a", Kind = LinkKinds.Veth, Peer = new VethPeer("eth0", NamespacePath: PathOf(_a)) });
            var leg = node.RequireLink("leg-a");
            node.ChangeLink(new LinkChange(leg.Index) { MasterIndex = bridge.Index, Up = true }, "leg-a");
            await Shell.CheckedAsync("ip", "netns", "del", _a);
            var attachedToDeleted = clock.Elapsed;

            // Recorded between passes, as the kernel reported it (the watch's own thread)...
            while (legs.LegsOf(PathOf(_a)).Count == 0)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"leg-a not recorded 5 s after it was attached (deleted {attachedToDeleted.TotalMilliseconds:0} ms after)");
                await Task.Delay(10);
            }

            Assert.Equal([new HostLeg(leg.Index, "leg-a", Bridge)], legs.LegsOf(PathOf(_a)));

            // ...and removed by the pass that sees the namespace gone.
            Assert.Equal(["leg-a"], legs.Remove(PathOf(_a)).Select(l => l.Name));
            Assert.Null(node.GetLink("leg-a"));
            Assert.DoesNotContain(PathOf(_a), legs.Namespaces);
        }
    }

    [LabFact]
    public async Task A_leg_is_removed_even_when_the_pass_comes_before_the_watch_applied_its_notification()
    {
        using var legs = new TaskLegs(new NodeNetworkOptions(), NullLogger<TaskLegs>.Instance, PathOf(_node));
        await Shell.CheckedAsync("ip", "netns", "add", _a);
        legs.Learn([PathOf(_a)]);
        using (RouteHandle.Open(PathOf(_a)))
        {
            await Shell.CheckedAsync("ip", "-n", _node, "link", "add", "leg-a", "master", Bridge, "up", "type", "veth", "peer", "name", "eth0", "netns", _a);
            await Shell.CheckedAsync("ip", "netns", "del", _a);

            // At once: whatever the watch's thread has applied yet, what is queued is applied before deciding.
            Assert.Equal(["leg-a"], legs.Remove(PathOf(_a)).Select(l => l.Name));
        }
    }

    /// <summary>A task namespace with one leg on the node's bridge, its other end eth0 inside, both up.</summary>
    private async Task AddTaskAsync(string ns, string leg)
    {
        await Shell.CheckedAsync("ip", "netns", "add", ns);
        await Shell.CheckedAsync("ip", "-n", _node, "link", "add", leg, "master", Bridge, "up", "type", "veth", "peer", "name", "eth0", "netns", ns);
    }
}
