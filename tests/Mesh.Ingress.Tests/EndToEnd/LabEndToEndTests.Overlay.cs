using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Tests.Overlay;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// The overlays the daemons make (the lab makes none): a bridge and a VXLAN device per network a node carries, one
/// static FDB and one permanent neighbour entry per remote endpoint, nothing flooded; kept through task churn and a
/// daemon restart. Read with the real tools (<c>bridge -j fdb</c>, <c>ip -j neigh</c>, <c>ip -d link</c>).
/// </summary>
public sealed partial class LabEndToEndTests
{
    private static string Vxlan(string network) => OverlayNames.Vxlan(network == OverlayNetwork.IngressName ? OverlayNetwork.Ingress.Vni : 4097);

    /// <summary>What a node's VXLAN device holds: its own FDB entries and its neighbours, as "MAC dst VTEP state" and "IP MAC state"; null without the device.</summary>
    private static async Task<(List<string> Fdb, List<string> Neighbours)?> EntriesAsync(string node, string vxlan)
    {
        var fdb = await Shell.RunAsync("bridge", "-n", node, "-j", "fdb", "show", "dev", vxlan);
        if (fdb.ExitCode != 0)
        {
            return null;
        }

        var neighbours = await Shell.CheckedAsync("ip", "-n", node, "-j", "neigh", "show", "dev", vxlan);
        return (IpJson.Fdb(fdb.Stdout).Select(e => $"{e.MacText} dst {e.DstText} {(e.Permanent ? "permanent" : "dynamic")}").Order(StringComparer.Ordinal).ToList(),
            IpJson.Neighbours(neighbours).Select(n => $"{n.IpText} {n.MacText} {(n.Permanent ? "PERMANENT" : "other")}").Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>
    /// What the test expects on a node's device for a network, worked out from the state by hand: every endpoint of
    /// another node (its tasks, and on ingress its sandbox) once, at that node's address; nothing of its own.
    /// </summary>
    private static (List<string> Fdb, List<string> Neighbours) Expected(ClusterState state, string node, string network)
    {
        var remote = state.Tasks.Where(t => t.Node != node && t.Addresses.ContainsKey(network)).Select(t => (Ip: t.Addresses[network], t.Node))
            .Concat(network == OverlayNetwork.IngressName ? state.Nodes.Where(n => n.Name != node).Select(n => (Ip: n.IngressSandboxIp, Node: n.Name)) : [])
            .ToList();
        string At(string owner) => state.Nodes.Single(n => n.Name == owner).AdvertiseAddress;
        string Mac(string ip) => "02:42:" + string.Join(':', ip.Split('.').Select(b => int.Parse(b, System.Globalization.CultureInfo.InvariantCulture).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
        return (remote.Select(r => $"{Mac(r.Ip)} dst {At(r.Node)} permanent").Order(StringComparer.Ordinal).ToList(),
            remote.Select(r => $"{r.Ip} {Mac(r.Ip)} PERMANENT").Order(StringComparer.Ordinal).ToList());
    }

    private static readonly string[] Nodes = ["mesh-n1", "mesh-n2", "mesh-n3"];

    [LabFact]
    public async Task T8o_a_task_on_node_1_is_reached_from_node_3s_sandbox_over_the_daemons_vxlan_which_neither_learns_nor_floods()
    {
        var state = await LabStateAsync();
        var web1 = state.Tasks.Single(t => t.Name == "web.1");
        Assert.Equal("mesh-n1", web1.Node);
        var answer = await Shell.CheckedAsync("ip", "netns", "exec", "mesh-n3-ingress", "curl", "-s", "-m", "3", $"http://{web1.Addresses[OverlayNetwork.IngressName]}:80/");
        Assert.StartsWith($"web.1 mesh-n1 {web1.Addresses[OverlayNetwork.IngressName]}", answer, StringComparison.Ordinal);

        foreach (var node in Nodes)
        {
            var link = await Shell.CheckedAsync("ip", "-n", node, "-d", "link", "show", "dev", "mesh-vx4096");
            Assert.Contains("vxlan id 4096 local 198.18.0.1" + node[^1], link, StringComparison.Ordinal);
            Assert.Contains("dstport 4789 nolearning proxy", link, StringComparison.Ordinal);
            Assert.Contains("mtu 1450", link, StringComparison.Ordinal);
            Assert.Contains("master mesh-ov-ingress", link, StringComparison.Ordinal);
            Assert.DoesNotContain("00:00:00:00:00:00", await Shell.CheckedAsync("bridge", "-n", node, "fdb", "show", "dev", "mesh-vx4096"), StringComparison.Ordinal);
        }
    }

    [LabFact]
    public async Task T8o_b_each_node_holds_exactly_one_static_fdb_and_neighbour_entry_per_remote_task_and_none_for_its_own()
    {
        var state = await LabStateAsync();
        foreach (var node in Nodes)
        {
            foreach (var network in new[] { OverlayNetwork.IngressName, Mesh.Ingress.Lab.LabPlan.AppNetwork })
            {
                var entries = await EntriesAsync(node, Vxlan(network));
                var carries = network == OverlayNetwork.IngressName || state.Tasks.Any(t => t.Node == node && t.Addresses.ContainsKey(network));
                if (!carries)
                {
                    // mesh-n3 runs no task of appnet: it does not carry it (Docker joins a node with its first task there).
                    Assert.Null(entries);
                    continue;
                }

                Assert.NotNull(entries);
                var (fdb, neighbours) = Expected(state, node, network);

                // Exactly these, but for the entries of tasks deregistered within the last minute (earlier tests' tasks):
                // they linger for their connections (DepartedPeers), at addresses nobody in the state holds.
                var held = state.Tasks.SelectMany(t => t.Addresses.Values).Concat(state.Nodes.Select(n => n.IngressSandboxIp)).ToHashSet(StringComparer.Ordinal);
                var heldMacs = held.Select(OverlayNames.Mac).ToList();
                Assert.Equal(fdb, entries.Value.Fdb.Where(f => heldMacs.Any(m => f.StartsWith(m + " ", StringComparison.Ordinal))).ToList());
                Assert.Equal(neighbours, entries.Value.Neighbours.Where(n => held.Contains(n.Split(' ')[0])).ToList());
                foreach (var own in state.Tasks.Where(t => t.Node == node && t.Addresses.ContainsKey(network)))
                {
                    Assert.DoesNotContain(entries.Value.Neighbours, n => n.StartsWith(own.Addresses[network] + " ", StringComparison.Ordinal));
                }
            }
        }

        Assert.Null(await EntriesAsync("mesh-n3", Vxlan(Mesh.Ingress.Lab.LabPlan.AppNetwork)));
    }

    [LabFact]
    public async Task T8o_c_a_removed_task_keeps_its_fdb_and_neighbours_on_every_node_for_its_open_connections_and_comes_back_to_them()
    {
        var state = await LabStateAsync();
        var web2 = state.Tasks.Single(t => t.Name == "web.2");
        var others = Nodes.Where(n => n != web2.Node).ToList();
        var macs = web2.Addresses.Values.Select(OverlayNames.Mac).ToList();

        async Task<int> HeldAsync()
        {
            var held = 0;
            foreach (var node in others)
            {
                foreach (var network in web2.Addresses.Keys)
                {
                    if (await EntriesAsync(node, Vxlan(network)) is { } e)
                    {
                        held += e.Fdb.Count(f => macs.Any(m => f.StartsWith(m, StringComparison.Ordinal)))
                            + e.Neighbours.Count(n => web2.Addresses.Values.Any(ip => n.StartsWith(ip + " ", StringComparison.Ordinal)));
                    }
                }
            }

            return held;
        }

        var before = await HeldAsync();
        Assert.True(before >= 2 * others.Count, $"web.2's entries on the other nodes before: {before}");
        Assert.Equal(0, (await Shell.MeshApiAsync("mesh-n1", "task", "rm", "web.2")).ExitCode);
        try
        {
            // Out of every node's backends (every node applied the removal), but still reachable over the overlay: its
            // connections drain (T8d); the entries go a minute later (DepartedPeersTests), or when the address is reused.
            var revision = (await LabStateAsync()).Revision;
            foreach (var node in Nodes)
            {
                await EventuallyAsync(async () => Assert.Equal((revision, (string?)null), await AppliedAsync(node)), attempts: 100);
            }

            await EventuallyAsync(async () => Assert.Equal(["web.1", "web.3"], (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order(StringComparer.Ordinal)), attempts: 50);
            Assert.Equal(before, await HeldAsync());
        }
        finally
        {
            string[] again = ["task", "add", "web.2", "--service", "web", "--node", web2.Node, "--netns", web2.NetnsPath!,
                .. web2.Addresses.SelectMany(a => new[] { "--ip", $"{a.Key}={a.Value}" }), .. web2.ResolvConfPath is { } rc ? ["--resolv-conf", rc] : Array.Empty<string>()];
            var add = await Shell.MeshApiAsync("mesh-n1", again);
            Assert.True(add.ExitCode == 0, add.Stderr);
        }

        await EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order(StringComparer.Ordinal)));
        Assert.Equal(before, await HeldAsync()); // the same entries: nothing was removed and made again
    }

    [LabFact]
    public async Task T8o_d_a_daemon_restart_changes_no_overlay_link_or_entry()
    {
        // The daemon's objects only: the overlay links, the VXLAN devices' own FDB entries and their neighbours (what the
        // bridges learn from traffic, and the underlay's neighbour states, come and go by themselves).
        static bool Ours(string line) =>
            LinkName(line) is { } name
                ? (name.StartsWith("mesh-vx", StringComparison.Ordinal) || name.StartsWith("mesh-ov-", StringComparison.Ordinal)) && IsLinkItself(line)
                : (line.Contains("mesh-vx", StringComparison.Ordinal) || line.Contains("mesh-ov-", StringComparison.Ordinal)) && !IsLearned(line);

        // The kernel also announces a link's IPv6 state (AF_INET6: each router solicitation a young link sends, at 1, 5,
        // 13, 29 s... after it came up) and its bridge port state (AF_BRIDGE) as RTM_NEWLINK; no daemon made those. Only
        // the link's own message (AF_UNSPEC) carries its qdisc, and every change Mesh makes to a link (add, set,
        // delete) is announced by one. Run alone right after `lab up`, the solicitations of the newest legs fell into the
        // restart's window. Mesh's own links now carry no IPv6 (Kernel/LinkIpv6.cs), so the solicitations are gone from
        // them; the bridge port states remain.
        static bool IsLinkItself(string line) =>
            line.StartsWith("Deleted ", StringComparison.Ordinal) || line.Contains(" qdisc ", StringComparison.Ordinal);

        // A link event names the link first ("20: meg7515d04d@mesh-ov-appnet: <...>"); what follows '@' is the veth
        // peer's index resolved in this namespace (a task's egress leg can show an overlay bridge's name there), so a
        // link is ours by its own name only.
        static string? LinkName(string line) =>
            line.Replace("Deleted ", "", StringComparison.Ordinal).Split(": ", 3) is [var index, var name, _] && index.All(char.IsAsciiDigit) && index.Length > 0
                ? name.Split('@')[0]
                : null;
        static bool IsLearned(string line) =>
            line.Replace("Deleted ", "", StringComparison.Ordinal).Split(' ') is [var mac, ..] && mac.Count(c => c == ':') == 5 && mac.Length == 17
            && line.Contains(" master ", StringComparison.Ordinal);

        async Task<string> SnapshotAsync(string node) =>
            string.Join('\n', (await Shell.CheckedAsync("ip", "-n", node, "-o", "-d", "link", "show")).Split('\n')
                .Where(l => l.Contains("mesh-vx", StringComparison.Ordinal) || l.Contains(": mesh-ov-", StringComparison.Ordinal))
                .Select(l => string.Join(' ', l.Split(' ').TakeWhile(w => w != "qdisc")))) // index, name, flags, mtu, master
            + "\n" + string.Join('\n', (await Shell.CheckedAsync("bridge", "-n", node, "fdb", "show")).Split('\n').Where(Ours))
            + "\n" + string.Join('\n', (await Shell.CheckedAsync("ip", "-n", node, "neigh", "show")).Split('\n').Where(Ours));

        const string node = "mesh-n2";
        async Task<string> DaemonPidAsync() => Assert.Single((await Shell.CheckedAsync("ip", "netns", "pids", node)).Split('\n', StringSplitOptions.RemoveEmptyEntries),
            p => File.Exists($"/proc/{p}/cmdline") && File.ReadAllText($"/proc/{p}/cmdline").Split('\0').Contains("daemon"));

        var pid = await DaemonPidAsync();
        var before = await SnapshotAsync(node);
        // Every event on the node's links and neighbours (the FDB's too) while its daemon stops and starts.
        var monitor = Process.Start(new ProcessStartInfo("ip", ["-n", node, "monitor", "link", "neigh"]) { RedirectStandardOutput = true, UseShellExecute = false })!;
        var events = monitor.StandardOutput.ReadToEndAsync();
        try
        {
            await Task.Delay(200);
            await Shell.CheckedAsync("kill", "-TERM", pid);
            await EventuallyAsync(() => Task.Run(() => Assert.False(Directory.Exists($"/proc/{pid}"))), 100);
            var up = await Shell.MeshAsync(lab.UpArguments);
            Assert.True(up.ExitCode == 0, up.Stderr);
            Assert.NotEqual(pid, await DaemonPidAsync());
        }
        finally
        {
            monitor.Kill();
            await monitor.WaitForExitAsync();
        }

        var seen = (await events).Split('\n').Where(Ours).ToList();
        Assert.True(seen.Count == 0, "the restart changed: " + string.Join(" | ", seen));
        Assert.Equal(before, await SnapshotAsync(node));
        Assert.Contains("dev mesh-vx4096 dst 198.18.0.11 self permanent", before, StringComparison.Ordinal); // the snapshot is not empty
    }

    [LabFact]
    public async Task T8o_e_a_task_reaches_the_world_through_its_nodes_gateway_bridge_masqueraded_and_only_there()
    {
        var state = await LabStateAsync();
        foreach (var task in state.Tasks.Where(t => t.Service == "web"))
        {
            var netns = "mesh-" + task.Name;
            // Its gateway leg: the ingress address moved into the gateway subnet (10.255.a.b -> 172.18.a.b), default route via the node.
            var ingress = task.Addresses[OverlayNetwork.IngressName].Split('.');
            var leg = await Shell.CheckedAsync("ip", "-n", netns, "-o", "-4", "addr", "show", "dev", "gw0");
            Assert.Contains($"inet 172.18.{ingress[2]}.{ingress[3]}/16", leg, StringComparison.Ordinal);
            Assert.StartsWith("default via 172.18.0.1 dev gw0", await Shell.CheckedAsync("ip", "-n", netns, "route", "show", "default"), StringComparison.Ordinal);

            // The site's resolver, asked directly (not through 127.0.0.11): it answers only if the node masquerades the
            // query (the underlay has no route back to 172.18.0.0/16).
            var dig = await Shell.CheckedAsync("ip", "netns", "exec", netns, "dig", "+short", "+time=2", "+tries=1", "@198.18.0.53", "www.upstream.test");
            Assert.Equal("198.18.0.200", dig.Trim());
        }

        // The node's own end of each leg is on its gateway bridge and nowhere else.
        var web1 = state.Tasks.Single(t => t.Name == "web.1");
        var veth = EgressVeth("web.1");
        Assert.Contains("master mesh-gwbridge", await Shell.CheckedAsync("ip", "-n", web1.Node, "-o", "link", "show", "dev", veth), StringComparison.Ordinal);
        Assert.Contains("ip saddr 172.18.0.0/16 oifname != \"mesh-gwbridge\" masquerade", await Shell.CheckedAsync("ip", "netns", "exec", web1.Node, "nft", "list", "table", "ip", "mesh-host"), StringComparison.Ordinal);
    }

    private static string EgressVeth(string task) => Mesh.Ingress.Egress.EgressPlanner.HostVeth(task);
}
