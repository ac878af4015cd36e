using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>The routing mesh end to end on this kernel, with curl and real sockets as the clients.</summary>
[TestCaseOrderer("Mesh.Ingress.Tests.EndToEnd.AlphabeticalOrderer", "Mesh.Ingress.Tests")]
[Trait("Category", "Lab")]
public sealed class RoutingMeshTests(LabFixture lab) : IClassFixture<LabFixture>
{
    private static readonly string[] AllTasks = ["web.1", "web.2", "web.3"];

    [LabFact]
    public async Task T1_every_node_spreads_new_connections_over_every_task_including_the_node_without_one()
    {
        foreach (var node in LabFixture.NodeAddresses)
        {
            var answered = await Shell.CurlTasksAsync(node, 30);
            Assert.Equal(30, answered.Count);
            Assert.Equal(AllTasks, answered.Distinct().Order());
        }
    }

    [LabFact]
    public async Task T2_a_udp_published_port_reaches_every_task_from_every_node()
    {
        foreach (var node in LabFixture.NodeAddresses)
        {
            var answered = new HashSet<string>();
            for (var i = 0; i < 12; i++)
            {
                // A new socket per datagram: each one is a new conntrack flow, so the backend choice runs again.
                using var udp = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
                udp.ReceiveTimeout = 3000;
                udp.Connect(IPAddress.Parse(node), 8080);
                udp.Send("who?"u8);
                var buffer = new byte[512];
                var n = udp.Receive(buffer);
                answered.Add(Encoding.ASCII.GetString(buffer, 0, n).Split(' ')[0]);
            }

            Assert.Equal(AllTasks, answered.Order());
        }
    }

    [LabFact]
    public async Task T3_a_removed_task_gets_no_new_connections_from_any_node_and_returns_when_added_back()
    {
        var inspect = await Shell.MeshApiAsync("mesh-n3", "task", "ls", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.Stderr);
        var ip = System.Text.Json.JsonDocument.Parse(inspect.Stdout).RootElement.EnumerateArray()
            .Single(t => t.GetProperty("name").GetString() == "web.2").GetProperty("addresses").GetProperty("ingress").GetString()!;

        var rm = await Shell.MeshApiAsync("mesh-n3", "task", "rm", "web.2");
        Assert.True(rm.ExitCode == 0, rm.Stderr);
        await EventuallyAsync(async () =>
        {
            foreach (var node in LabFixture.NodeAddresses)
            {
                Assert.Equal(["web.1", "web.3"], (await Shell.CurlTasksAsync(node, 12)).Distinct().Order());
            }
        });

        var add = await Shell.MeshApiAsync("mesh-n1", "task", "add", "web.2", "--service", "web", "--node", "mesh-n2", "--netns", "/var/run/netns/mesh-web.2", "--ip", $"ingress={ip}");
        Assert.True(add.ExitCode == 0, add.Stderr);
        await EventuallyAsync(async () =>
        {
            foreach (var node in LabFixture.NodeAddresses)
            {
                Assert.Equal(AllTasks, (await Shell.CurlTasksAsync(node, 12)).Distinct().Order());
            }
        });
    }

    [LabFact]
    public async Task T4_duplicate_and_invalid_cli_requests_fail_with_a_message_and_change_nothing()
    {
        var before = await Shell.MeshApiAsync("mesh-n2", "service", "inspect", "web");
        var dup = await Shell.MeshApiAsync("mesh-n2", "service", "create", "web", "--publish", "8080:80");
        Assert.Equal(1, dup.ExitCode);
        Assert.Contains("already exists", dup.Stderr, StringComparison.Ordinal);
        var bad = await Shell.MeshApiAsync("mesh-n2", "service", "create", "api", "--publish", "99999:80");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("publish", bad.Stderr, StringComparison.Ordinal);
        var after = await Shell.MeshApiAsync("mesh-n2", "service", "inspect", "web");
        Assert.Equal(before.Stdout, after.Stdout);
        var unreachable = await Shell.MeshAsync("service", "ls", "--api", "unix:///run/mesh/lab/nobody.sock");
        Assert.Equal(3, unreachable.ExitCode);
    }

    [LabFact]
    public async Task T5_a_daemon_killed_and_restarted_converges_to_identical_rules_and_keeps_open_connections()
    {
        using var connection = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        connection.ReceiveTimeout = 5000;
        await connection.ConnectAsync(IPAddress.Parse("198.18.0.13"), 8080);
        var first = await GetOnAsync(connection);
        Assert.StartsWith("web.", first, StringComparison.Ordinal);

        var before = await Shell.MeshRulesAsync("mesh-n3");
        var pids = (await Shell.CheckedAsync("ip", "netns", "pids", "mesh-n3")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(pids);
        await Shell.CheckedAsync("kill", "-KILL", pids[0]);

        var up = await Shell.MeshAsync("lab", "up", "--nodes", "3", "--replicas", "3", "--dataplane", "nftables");
        Assert.True(up.ExitCode == 0, up.Stderr);
        Assert.NotEqual(pids[0], (await Shell.CheckedAsync("ip", "netns", "pids", "mesh-n3")).Trim());
        Assert.Equal(before, await Shell.MeshRulesAsync("mesh-n3"));

        // Same connection, same task: conntrack kept the flow through the restart.
        Assert.Equal(first, await GetOnAsync(connection));
    }

    [LabFact]
    public async Task T6_lab_status_shows_nodes_services_tasks_and_dataplanes()
    {
        var status = await Shell.MeshAsync("lab", "status");
        Assert.True(status.ExitCode == 0, status.Stdout + status.Stderr);
        foreach (var expected in new[] { "mesh-n1", "mesh-n2", "mesh-n3", "nftables", "web.1", "web.2", "web.3", "8080:80/tcp" })
        {
            Assert.Contains(expected, status.Stdout, StringComparison.Ordinal);
        }
    }

    [LabFact]
    public async Task T9_lab_down_removes_everything_it_made_and_is_safe_twice()
    {
        var rootLinks = await Shell.CheckedAsync("ip", "-o", "link", "show");
        var down = await Shell.MeshAsync("lab", "down");
        Assert.True(down.ExitCode == 0, down.Stderr);
        Assert.DoesNotContain("mesh", await Shell.CheckedAsync("ip", "netns", "list"), StringComparison.Ordinal);
        Assert.False(Directory.Exists("/run/mesh/lab"));
        Assert.Equal(rootLinks, await Shell.CheckedAsync("ip", "-o", "link", "show"));
        Assert.DoesNotContain("mesh", rootLinks, StringComparison.OrdinalIgnoreCase);
        var again = await Shell.MeshAsync("lab", "down");
        Assert.Equal(0, again.ExitCode);
        Assert.Equal(1, (await Shell.MeshAsync("lab", "status")).ExitCode);
        Assert.NotNull(lab.UpOutput);
    }

    /// <summary>One keep-alive request on an open connection; the answering task's name.</summary>
    private static async Task<string> GetOnAsync(Socket socket)
    {
        await socket.SendAsync("GET / HTTP/1.1\r\nHost: mesh\r\n\r\n"u8.ToArray());
        var buffer = new byte[4096];
        var text = new StringBuilder();
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer);
            Assert.True(n > 0, "connection closed by the mesh");
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            var response = text.ToString();
            var headerEnd = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var length = response.Split("\r\n").FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            if (headerEnd > 0 && length is not null && response.Length - headerEnd - 4 >= int.Parse(length[15..].Trim(), System.Globalization.CultureInfo.InvariantCulture))
            {
                return response[(headerEnd + 4)..].Split(' ')[0];
            }
        }
    }

    private static async Task EventuallyAsync(Func<Task> assertion)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await assertion();
                return;
            }
            catch (Exception) when (attempt < 20)
            {
                await Task.Delay(100);
            }
        }
    }
}
