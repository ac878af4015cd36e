using System.Diagnostics;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Mesh.Ipvs;
using Mesh.Ingress.Http;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>The L7 entry (issue 11 part 3): the lab's web has <c>--route web.test/=80</c>; curl from mesh-client is the client.</summary>
public sealed partial class LabEndToEndTests
{
    /// <summary>GETs from mesh-client to a node's HTTP port, each on a new connection: one answer line (or status) each.</summary>
    private static async Task<List<string>> CurlHttpAsync(string node, string host, string path, int count, params string[] headers)
    {
        var args = new List<string> { "netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "-H", "Connection: close", "-H", $"Host: {host}" };
        foreach (var header in headers)
        {
            args.AddRange(["-H", header]);
        }

        for (var i = 0; i < count; i++)
        {
            args.Add($"http://{node}{path}");
        }

        var output = await Shell.CheckedAsync("ip", [.. args]);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    private static async Task<string> StatusAsync(string node, string host, string path) =>
        (await Shell.CheckedAsync("ip", "netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "-H", $"Host: {host}", $"http://{node}{path}")).Trim();

    [LabFact]
    public async Task T8r_host_web_test_reaches_every_task_from_every_node_and_each_sees_the_client_address()
    {
        foreach (var node in LabFixture.NodeAddresses)
        {
            var answers = await CurlHttpAsync(node, "web.test", "/", 12);
            Assert.Equal(12, answers.Count);
            Assert.Equal(AllTasks, answers.Select(a => a.Split(' ')[0]).Distinct().Order());
            // The task's peer is the sandbox (the entry connects from there); the client's address arrives in the header.
            Assert.All(answers, a => Assert.Contains($" xff={Client} ", a, StringComparison.Ordinal));
            Assert.All(answers, a => Assert.Contains(" peer=10.255.", a, StringComparison.Ordinal));
        }

        var metrics = await Shell.CheckedAsync("curl", "-s", "-m", "3", "--unix-socket", "/run/mesh/lab/mesh-n1.sock", "http://mesh/metrics");
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("mesh_http_requests_total{", StringComparison.Ordinal)
            && l.Contains("route=\"web:web.test/\"", StringComparison.Ordinal) && l.Contains("backend=\"web.1\"", StringComparison.Ordinal));
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("mesh_http_request_duration_seconds_bucket{", StringComparison.Ordinal)
            && l.Contains("route=\"web:web.test/\"", StringComparison.Ordinal));
    }

    [LabFact]
    public async Task T8r_a_spoofed_x_forwarded_for_from_the_client_is_not_passed_on()
    {
        foreach (var node in LabFixture.NodeAddresses)
        {
            var answers = await CurlHttpAsync(node, "web.test", "/", 3, "X-Forwarded-For: 6.6.6.6", "Forwarded: for=6.6.6.6");
            Assert.Equal(3, answers.Count);
            Assert.All(answers, a => Assert.Contains($" xff={Client} ", a, StringComparison.Ordinal));
            Assert.All(answers, a => Assert.DoesNotContain("6.6.6.6", a, StringComparison.Ordinal));
        }
    }

    [LabFact]
    public async Task T8r_an_unknown_host_gets_404_with_a_plain_body_from_every_node()
    {
        foreach (var node in LabFixture.NodeAddresses)
        {
            var response = await Shell.CheckedAsync("ip", "netns", "exec", "mesh-client", "curl", "-s", "-i", "-m", "3", "-H", "Host: nope.test", $"http://{node}/");
            Assert.StartsWith("HTTP/1.1 404", response, StringComparison.Ordinal);
            Assert.Contains("Content-Type: text/plain", response, StringComparison.OrdinalIgnoreCase);
            Assert.EndsWith("\r\n\r\n" + HttpEntry.NotFoundBody, response, StringComparison.Ordinal);
        }
    }

    [LabFact]
    public async Task T8r_a_route_added_or_removed_is_live_on_every_node_within_a_second_and_the_longer_prefix_wins()
    {
        // "edge" has no tasks: while its route web.test/edge exists, /edge/x answers 503 (a route without backends);
        // without it, the shorter web.test/ takes /edge/x to the web tasks (200). Each node is polled from when
        // the command returned.
        foreach (var node in LabFixture.NodeAddresses)
        {
            Assert.Equal("200", await StatusAsync(node, "web.test", "/edge/x"));
        }

        var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", "edge", "--route", "web.test/edge=80");
        Assert.True(create.ExitCode == 0, create.Stderr);
        try
        {
            await AllNodesWithinASecondAsync("503");
            Assert.Equal("200", await StatusAsync("198.18.0.12", "web.test", "/edgex"));
            Assert.Equal("200", await StatusAsync("198.18.0.12", "web.test", "/"));
        }
        finally
        {
            var rm = await Shell.MeshApiAsync("mesh-n1", "service", "rm", "edge");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
        }

        await AllNodesWithinASecondAsync("200");
    }

    [LabFact]
    public async Task T8r_a_websocket_through_the_entry_of_every_node_survives_a_route_change()
    {
        var sockets = new List<(string Node, ClientWebSocket Socket, HttpMessageInvoker Invoker)>();
        try
        {
            foreach (var node in LabFixture.NodeAddresses)
            {
                // ws://web.test/ws from mesh-client, the TCP connection going to this node's HTTP port.
                var handler = new SocketsHttpHandler
                {
                    ConnectCallback = async (_, ct) =>
                    {
                        var socket = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                        await socket.ConnectAsync(System.Net.IPAddress.Parse(node), 80, ct);
                        return new NetworkStream(socket, ownsSocket: true);
                    },
                };
                var invoker = new HttpMessageInvoker(handler);
                var ws = new ClientWebSocket();
                sockets.Add((node, ws, invoker));
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await ws.ConnectAsync(new Uri("ws://web.test/ws"), invoker, timeout.Token);
            }

            var first = new List<string>();
            foreach (var (_, ws, _) in sockets)
            {
                first.Add(await EchoAsync(ws, "before"));
            }

            Assert.All(first, a => Assert.Matches(@"^web\.\d: before$", a));
            var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", "edge", "--route", "web.test/edge=80");
            Assert.True(create.ExitCode == 0, create.Stderr);
            await AllNodesWithinASecondAsync("503");
            var rm = await Shell.MeshApiAsync("mesh-n1", "service", "rm", "edge");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
            await AllNodesWithinASecondAsync("200");

            // The same connections, to the same tasks, after two configuration swaps on every node.
            for (var i = 0; i < sockets.Count; i++)
            {
                Assert.Equal(first[i].Replace("before", "after", StringComparison.Ordinal), await EchoAsync(sockets[i].Socket, "after"));
            }
        }
        finally
        {
            foreach (var (_, ws, invoker) in sockets)
            {
                ws.Dispose();
                invoker.Dispose();
            }
        }
    }

    private static async Task<string> EchoAsync(ClientWebSocket ws, string text)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var buffer = new byte[1024];
        var received = await ws.ReceiveAsync(buffer, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, received.Count);
    }

    private static async Task AllNodesWithinASecondAsync(string status)
    {
        var clock = Stopwatch.StartNew();
        foreach (var node in LabFixture.NodeAddresses)
        {
            while (await StatusAsync(node, "web.test", "/edge/x") != status)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{node}: /edge/x not {status} after {clock.ElapsedMilliseconds} ms");
                await Task.Delay(20);
            }
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"live after {clock.ElapsedMilliseconds} ms");
    }
}
