using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mesh.Ingress.Balancing;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Http;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// Load-balancing policy and affinity (issue 11 part 5), through real nodes from mesh-client: <c>--lb maglev</c> keeps
/// a client on its task through every node and keeps most clients on theirs when a task goes; <c>--affinity
/// cookie</c> keeps a client (its cookie) on its task through the L7 entry of every node. Each test makes its service
/// and tasks and removes them, and every node's rules are as before afterwards.
/// </summary>
public sealed partial class LabEndToEndTests
{
    /// <summary>1,000 client addresses: a /22 the client answers for as a whole (a local route, no address per client).</summary>
    private const string ClientRange = "198.18.4.0/22";

    private static readonly IPAddress[] ClientSources =
        Enumerable.Range(1, 1000).Select(i => new IPAddress([198, 18, (byte)(4 + (i / 256)), (byte)(i % 256)])).ToArray();

    [LabFact]
    public async Task T8l_maglev_keeps_a_client_on_its_task_through_every_node_and_70_percent_of_1000_when_one_of_4_tasks_goes()
    {
        const string service = "mag";
        const int port = 8093;
        var tasks = new (string Name, int Node)[] { ("mag.1", 1), ("mag.2", 2), ("mag.3", 3), ("mag.4", 1) };
        var clock = Stopwatch.StartNew();
        var before = await AllRulesAsync();
        var routes = new List<string[]>();
        try
        {
            var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", service, "--publish", $"{port}:80", "--lb", "maglev");
            Assert.True(create.ExitCode == 0, create.Stderr);
            var inspect = JsonDocument.Parse((await Shell.MeshApiAsync("mesh-n2", "service", "inspect", service)).Stdout).RootElement.GetProperty("service");
            Assert.Equal(("maglev", "none"), (inspect.GetProperty("lb").GetString(), inspect.GetProperty("affinity").GetString()));
            var lab = new LabCluster(new ProcessCommandRunner(), TextWriter.Null);
            var store = ApiClientFactory.Store(LabPlan.Api("mesh-n1"));
            await Task.WhenAll(tasks.Select(t => lab.StartTaskAsync(store, t.Name, t.Node, CancellationToken.None)));

            // The client sends from the whole range; every node routes the range back to it (restored below).
            routes.Add(["-n", "mesh-client", "route", "add", "local", ClientRange, "dev", "lo"]);
            routes.AddRange(Enumerable.Range(1, LabFixture.NodeAddresses.Length).Select(i => new[] { "-n", $"mesh-n{i}", "route", "add", ClientRange, "via", Client }));
            foreach (var route in routes)
            {
                await Shell.CheckedAsync("ip", route);
            }

            Console.WriteLine($"T8l maglev: service, 4 tasks and routes in {clock.ElapsedMilliseconds} ms");

            // What every node's kernel must answer: the daemon's Maglev table over the tasks' addresses, indexed by the
            // kernel's jhash of the source (Mesh's copy, checked against the kernel in NftJhashTests).
            var addresses = JsonDocument.Parse((await Shell.MeshApiAsync("mesh-n1", "service", "inspect", service)).Stdout).RootElement.GetProperty("tasks").EnumerateArray()
                .ToDictionary(t => t.GetProperty("addresses").GetProperty("ingress").GetString()!, t => t.GetProperty("name").GetString()!);
            string[] Predicted(IEnumerable<string> taskNames)
            {
                var table = MaglevTable.Build(addresses.Where(a => taskNames.Contains(a.Value)).Select(a => a.Key));
                return ClientSources.Select(s => addresses[table.Backends[table.Entries[NftJhash.Bucket(s, (uint)table.Size, 0x4d455348)]]]).ToArray();
            }

            var predicted = Predicted(tasks.Select(t => t.Name));
            string[] first = [];
            await EventuallyAsync(async () => Assert.Equal(predicted, first = await TasksOfAsync(LabFixture.NodeAddresses[1], port, ClientSources)), attempts: 50);
            var shares = first.GroupBy(t => t).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(4, shares.Count);
            Assert.All(shares.Values, n => Assert.InRange(n, 150, 350));

            // Every node has the same table and hash seed: a client reaches the same task whichever node it calls.
            var sample = ClientSources[..100];
            foreach (var node in new[] { LabFixture.NodeAddresses[0], LabFixture.NodeAddresses[2] })
            {
                Assert.Equal(first[..100], await TasksOfAsync(node, port, sample));
            }

            // The task removed is the one with the share nearest a quarter: what moves is then Maglev's doing, not the
            // sampling noise of 1,000 hashed addresses (a task's share is 25% ± ~2%, so a fixed pick could have 30%).
            var removed = shares.OrderBy(s => Math.Abs(s.Value - 250)).ThenBy(s => s.Key, StringComparer.Ordinal).First().Key;
            Assert.Equal(0, (await Shell.MeshApiAsync("mesh-n1", "task", "rm", removed)).ExitCode);
            await RemoveTaskNamespaceAsync($"mesh-{removed}");
            var expected = Predicted(tasks.Select(t => t.Name).Where(t => t != removed));
            string[] after = [];
            await EventuallyAsync(async () => Assert.Equal(expected, after = await TasksOfAsync(LabFixture.NodeAddresses[1], port, ClientSources)), attempts: 50);

            Assert.DoesNotContain(removed, after);
            var kept = first.Zip(after).Count(p => p.First == p.Second);
            var others = first.Count(t => t != removed);
            var keptOfOthers = first.Zip(after).Count(p => p.First != removed && p.First == p.Second);
            Console.WriteLine($"T8l maglev: shares before {string.Join(' ', shares.OrderBy(s => s.Key).Select(s => $"{s.Key}={s.Value}"))}, every answer as the table predicts; after {removed} left {kept} of 1000 kept their task ({keptOfOthers} of the other tasks' {others}); {clock.ElapsedMilliseconds} ms so far");
            Assert.True(kept >= 700, $"{kept} of 1000 client addresses kept their task");
            Assert.True(keptOfOthers >= others * 0.9, $"{keptOfOthers} of the {others} clients of the remaining tasks kept theirs");
        }
        finally
        {
            foreach (var route in routes)
            {
                await Shell.RunAsync("ip", [.. route.Select(a => a == "add" ? "del" : a)]);
            }

            await Shell.MeshApiAsync("mesh-n1", "service", "rm", service);
            foreach (var (name, _) in tasks)
            {
                await RemoveTaskNamespaceAsync($"mesh-{name}");
            }
        }

        await EventuallyAsync(async () => Assert.Equal(before, await AllRulesAsync()), attempts: 100);
        Console.WriteLine($"T8l maglev: {clock.ElapsedMilliseconds} ms in all");
    }

    [LabFact]
    public async Task T8l_n_cookie_affinity_keeps_a_client_on_its_task_through_the_l7_entry_of_every_node()
    {
        const string service = "sticky";
        var tasks = new (string Name, int Node)[] { ("sticky.1", 1), ("sticky.2", 2), ("sticky.3", 3) };
        var clock = Stopwatch.StartNew();
        var before = await AllRulesAsync();
        try
        {
            var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", service, "--route", "sticky.test/=80", "--affinity", "cookie");
            Assert.True(create.ExitCode == 0, create.Stderr);
            var refused = await Shell.MeshApiAsync("mesh-n1", "service", "update", "web", "--affinity", "cookie", "--lb", "least-requests");
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("lb: least-requests counts HTTP requests", refused.Stderr, StringComparison.Ordinal);
            var lab = new LabCluster(new ProcessCommandRunner(), TextWriter.Null);
            var store = ApiClientFactory.Store(LabPlan.Api("mesh-n1"));
            await Task.WhenAll(tasks.Select(t => lab.StartTaskAsync(store, t.Name, t.Node, CancellationToken.None)));

            // Without the cookie requests spread (round robin); each answer sets the cookie for its task.
            await EventuallyAsync(async () =>
            {
                var spread = await CurlHttpAsync(LabFixture.NodeAddresses[0], "sticky.test", "/", 6);
                Assert.Equal(tasks.Select(t => t.Name), spread.Select(a => a.Split(' ')[0]).Distinct().Order());
            }, attempts: 50);

            var (task, cookie) = await StickyAsync(LabFixture.NodeAddresses[0], null);
            Assert.NotNull(cookie);
            foreach (var node in LabFixture.NodeAddresses)
            {
                for (var i = 0; i < 4; i++)
                {
                    Assert.Equal(task, (await StickyAsync(node, cookie)).Task);
                }
            }

            Console.WriteLine($"T8l cookie: {cookie} kept 12 requests through the 3 nodes on {task}");

            // Per route and backend (part 6): each node counts and times what its entry sent to the task.
            var metrics = (await Shell.CheckedAsync("curl", "-s", "-m", "3", "--unix-socket", LabPlan.ApiSocket("mesh-n3"), "http://mesh/metrics")).Split('\n');
            Assert.Contains(metrics, l => l.StartsWith("mesh_http_requests_total{", StringComparison.Ordinal) && l.Contains($"backend=\"{task}\"", StringComparison.Ordinal)
                && l.Contains("route=\"sticky:sticky.test/\"", StringComparison.Ordinal) && l.Contains("service=\"sticky\"", StringComparison.Ordinal) && l.Contains("status_code=\"200\"", StringComparison.Ordinal)
                && double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture) >= 4);
            Assert.Contains(metrics, l => l.StartsWith("mesh_http_request_duration_seconds_bucket{", StringComparison.Ordinal) && l.Contains($"backend=\"{task}\"", StringComparison.Ordinal) && l.Contains("route=\"sticky:sticky.test/\"", StringComparison.Ordinal));
        }
        finally
        {
            await Shell.MeshApiAsync("mesh-n1", "service", "rm", service);
            foreach (var (name, _) in tasks)
            {
                await RemoveTaskNamespaceAsync($"mesh-{name}");
            }
        }

        await EventuallyAsync(async () => Assert.Equal(before, await AllRulesAsync()), attempts: 100);
        Console.WriteLine($"T8l cookie: {clock.ElapsedMilliseconds} ms in all");
    }

    /// <summary>One request for sticky.test through a node's L7 entry, with the affinity cookie when given: the task that answered and the cookie it set (if any).</summary>
    private static async Task<(string Task, string? Cookie)> StickyAsync(string node, string? cookie)
    {
        string[] args = ["netns", "exec", "mesh-client", "curl", "-s", "-i", "-m", "3", "-H", "Host: sticky.test", .. (cookie is null ? Array.Empty<string>() : ["-H", "Cookie: " + cookie]), $"http://{node}/"];
        var response = await Shell.CheckedAsync("ip", args);
        var parts = response.Split("\r\n\r\n", 2);
        var set = parts[0].Split("\r\n").FirstOrDefault(h => h.StartsWith("Set-Cookie: " + HttpRouteTable.AffinityCookie + "=", StringComparison.OrdinalIgnoreCase));
        return (parts[1].Split(' ')[0], set?["Set-Cookie: ".Length..].Split(';')[0]);
    }

    /// <summary>
    /// One request per source address (a new connection each, 50 at a time) from mesh-client to a node's port: the
    /// task that answered each, in order. The sockets are made in mesh-client's namespace and bound to the source.
    /// </summary>
    private static async Task<string[]> TasksOfAsync(string node, int port, IReadOnlyList<IPAddress> sources)
    {
        var sockets = NetworkNamespace.Run(NetworkNamespacePath.Named("mesh-client").Path!, () => sources.Select(source =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(source, 0));
            return s;
        }).ToArray());
        var answers = new string[sources.Count];
        var request = Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {node}\r\nConnection: close\r\n\r\n");
        var target = new IPEndPoint(IPAddress.Parse(node), port);
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, sources.Count), new ParallelOptions { MaxDegreeOfParallelism = 50 }, async (i, _) =>
            {
                var socket = sockets[i];
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await socket.ConnectAsync(target, timeout.Token);
                await socket.SendAsync(request, SocketFlags.None, timeout.Token);
                var response = new MemoryStream();
                var buffer = new byte[4096];
                int n;
                while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
                {
                    response.Write(buffer, 0, n);
                }

                var text = Encoding.ASCII.GetString(response.ToArray());
                answers[i] = text.Split("\r\n\r\n", 2) is [_, var body] ? body.Split(' ')[0] : "?";
            });
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        return answers;
    }
}
