using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>
/// The sandbox check that runs at every resync: on a converged node it only reads (a handful of processes),
/// on a fresh one it builds everything, and it never writes what is already there.
/// </summary>
public class IngressSandboxTests
{
    private static readonly NodeNetworkOptions Options = new() { IngressSandbox = "sandbox-test-never-created" };

    private const string HostConverged = """
        [{"ifname":"lo","flags":["LOOPBACK","UP"],"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
         {"ifname":"mesh-ov-ingress","flags":["BROADCAST","UP"],"addr_info":[]},
         {"ifname":"mesh-gwbridge","flags":["BROADCAST","UP"],"addr_info":[{"family":"inet","local":"172.18.0.1","prefixlen":16},{"family":"inet6","local":"fe80::1","prefixlen":64}]},
         {"ifname":"mesh-sbx-gw","flags":["BROADCAST","UP"],"master":"mesh-gwbridge","addr_info":[]},
         {"ifname":"mesh-sbx-ing","flags":["BROADCAST","UP"],"master":"mesh-ov-ingress","addr_info":[]}]
        """;

    private const string SandboxConverged = """
        [{"ifname":"lo","flags":["LOOPBACK","UP"],"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
         {"ifname":"eth1","flags":["BROADCAST","UP"],"addr_info":[{"family":"inet","local":"172.18.0.2","prefixlen":16}]},
         {"ifname":"eth0","flags":["BROADCAST","UP"],"address":"02:42:0a:ff:00:02","addr_info":[{"family":"inet","local":"10.255.0.2","prefixlen":16}]}]
        """;

    private const string HostRoutesConverged = """[{"dst":"10.255.0.0/16","gateway":"172.18.0.2","dev":"mesh-gwbridge"}]""";

    [Fact]
    public async Task A_converged_node_is_only_read()
    {
        var runner = new ScriptedRunner(HostConverged, SandboxConverged, """[{"dst":"default","gateway":"172.18.0.1","dev":"eth1"}]""", "1\n1\n");
        await new IngressSandbox(new LinkTool(runner), Options).EnsureAsync("10.255.0.2", CancellationToken.None);

        Assert.Equal(["ip netns add sandbox-test-never-created"], runner.Writes); // the test's namespace file never exists
        Assert.Equal(7, runner.Calls.Count); // host links, host sysctls, netns add, sandbox links, route, sandbox sysctl, host routes
    }

    [Fact]
    public async Task A_fresh_node_gets_everything_and_what_differs_is_put_right()
    {
        var runner = new ScriptedRunner("""[{"ifname":"mesh-ov-ingress","flags":["UP"],"addr_info":[]}]""", "[]", "[]", "0\n0\n", "[]");
        await new IngressSandbox(new LinkTool(runner), Options).EnsureAsync("10.255.0.2", CancellationToken.None);

        Assert.Contains("ip link add mesh-gwbridge type bridge", runner.Writes);
        Assert.Contains("ip addr replace 172.18.0.1/16 dev mesh-gwbridge", runner.Writes);
        Assert.Contains("sysctl -q -w net.ipv4.ip_forward=1", runner.Writes);
        Assert.Contains("ip link add mesh-sbx-ing mtu 1450 type veth peer name eth0 address 02:42:0a:ff:00:02 mtu 1450 netns sandbox-test-never-created", runner.Writes);
        Assert.Contains("ip link set mesh-sbx-ing master mesh-ov-ingress up", runner.Writes);
        Assert.Contains(runner.Writes, w => w.EndsWith("ip addr replace 10.255.0.2/16 dev eth0", StringComparison.Ordinal));
        Assert.Contains(runner.Writes, w => w.EndsWith("ip route replace default via 172.18.0.1", StringComparison.Ordinal));
        Assert.Contains("ip route replace 10.255.0.0/16 via 172.18.0.2 dev mesh-gwbridge", runner.Writes);

        // Only the sandbox's ingress address differs (the node got a new one): that address and the MAC that follows it are written.
        var moved = new ScriptedRunner(HostConverged, SandboxConverged, """[{"dst":"default","gateway":"172.18.0.1","dev":"eth1"}]""", "1\n1\n");
        await new IngressSandbox(new LinkTool(moved), Options).EnsureAsync("10.255.0.9", CancellationToken.None);
        Assert.Equal(
        [
            "ip netns add sandbox-test-never-created",
            "nsenter --net=/var/run/netns/sandbox-test-never-created -- ip link set eth0 address 02:42:0a:ff:00:09",
            "nsenter --net=/var/run/netns/sandbox-test-never-created -- ip addr replace 10.255.0.9/16 dev eth0",
        ], moved.Writes);
    }

    [Fact]
    public async Task Without_the_runtimes_ingress_bridge_it_says_so_and_builds_nothing()
    {
        var runner = new ScriptedRunner("[]", "[]", "[]", "1\n1\n");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new IngressSandbox(new LinkTool(runner), Options).EnsureAsync("10.255.0.2", CancellationToken.None));
        Assert.Contains("mesh-ov-ingress", e.Message, StringComparison.Ordinal);
        Assert.Empty(runner.Writes);
    }

    /// <summary>Answers the reads from fixed text and records every command; anything that is not a read is a write.</summary>
    private sealed class ScriptedRunner(string hostLinks, string sandboxLinks, string sandboxRoutes, string sysctls, string hostRoutes = HostRoutesConverged) : ICommandRunner
    {
        public List<string> Calls { get; } = [];

        public List<string> Writes { get; } = [];

        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
        {
            var line = string.Join(' ', [file, .. arguments]);
            Calls.Add(line);
            var inSandbox = file == "nsenter";
            string? output = line switch
            {
                _ when line.EndsWith("ip -j addr show", StringComparison.Ordinal) => inSandbox ? sandboxLinks : hostLinks,
                _ when line.EndsWith("ip -j route show default", StringComparison.Ordinal) => sandboxRoutes,
                _ when line.Contains("sysctl -n", StringComparison.Ordinal) => sysctls,
                _ when line == "ip -j -4 route show table main" => hostRoutes,
                _ => null,
            };
            if (output is null)
            {
                Writes.Add(line);
            }

            return Task.FromResult(new CommandResult(0, output ?? "", ""));
        }
    }
}
