using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>Sockets created inside a throw-away network namespace; the real dig runs in it via `ip netns exec`.</summary>
public class NetworkNamespaceSocketsTests
{
    [RequiresRootFact("ip", "dig")]
    public async Task Server_on_sockets_created_in_a_namespace_answers_dig_inside_it_only()
    {
        string ns = $"mesh-dnstest-{Environment.ProcessId}";
        await Ip("netns", "add", ns);
        try
        {
            await Ip("-n", ns, "link", "set", "lo", "up");
            string path = $"/run/netns/{ns}";
            var bind = new IPEndPoint(IPAddress.Parse("127.0.0.11"), 0);
            var udp = NetworkNamespaceSockets.CreateUdp(path, bind);
            int port = ((IPEndPoint)udp.LocalEndPoint!).Port;
            var tcp = NetworkNamespaceSockets.CreateTcpListener(path, new IPEndPoint(IPAddress.Parse("127.0.0.11"), port));
            await using var server = new EmbeddedDnsServer(new EmbeddedDnsServerOptions { TaskId = "web.1", UdpSocket = udp, TcpListener = tcp }, new FakeAuthority());
            server.Start();

            foreach (var transport in new[] { "+notcp", "+tcp" })
            {
                var r = await DnsTestTools.RunAsync("ip", ["netns", "exec", ns, "dig", "@127.0.0.11", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "+tries=1", "+time=3", transport, "web.mesh"], TimeSpan.FromSeconds(15));
                Assert.Contains("status: NOERROR", r.Stdout);
                Assert.Contains("10.0.1.2", r.Stdout);
            }

            // The listener is not in this (the test's) namespace: nothing listens on 127.0.0.11:port here.
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await Assert.ThrowsAnyAsync<SocketException>(async () => await probe.ConnectAsync(new IPEndPoint(IPAddress.Parse("127.0.0.11"), port)));

            // The calling thread never changed namespace.
            Assert.Equal(new FileInfo("/proc/self/ns/net").LinkTarget, new FileInfo("/proc/thread-self/ns/net").LinkTarget);
        }
        finally
        {
            await Ip("netns", "del", ns);
        }
    }

    [RequiresRootFact]
    public void Missing_namespace_is_a_clear_error()
    {
        var e = Assert.ThrowsAny<IOException>(() => NetworkNamespaceSockets.CreateUdp("/run/netns/does-not-exist-mesh", new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.Contains("open(/run/netns/does-not-exist-mesh) failed", e.Message);
        Assert.Contains("ENOENT, errno 2", e.Message);
    }

    private static async Task Ip(params string[] args)
    {
        var r = await DnsTestTools.RunAsync("ip", args, TimeSpan.FromSeconds(10));
        Assert.True(r.ExitCode == 0, $"ip {string.Join(' ', args)}: {r.Stderr}");
    }
}
