using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// Issue 11 part 6, the L4 mesh per backend: <c>mesh_l4_backend_connections{service,port,task,state}</c> on a node's
/// <c>/metrics</c> against conntrack-tools' own reading of that node's ingress sandbox. Six connections are held open
/// from mesh-client through node 3 (no task of its own: every connection crosses the overlay), so each of the three
/// tasks has at least two active ones (numgen round robin); the gauge is read between two <c>conntrack -L</c> listings
/// and must lie between their counts for each task and state (entries of earlier tests can only expire meanwhile:
/// nothing else connects).
/// </summary>
public sealed partial class LabEndToEndTests
{
    [LabFact]
    public async Task T8w_the_l4_backend_gauge_counts_each_tasks_connections_as_conntrack_lists_them()
    {
        var tasks = (await LabStateAsync()).Tasks.Where(t => t.Service == "web")
            .ToDictionary(t => t.Addresses["ingress"], t => t.Name, StringComparer.Ordinal);
        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                var socket = NetworkNamespace.Run("/run/netns/mesh-client", () =>
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    s.Connect(new IPEndPoint(IPAddress.Parse("198.18.0.13"), 8080));
                    return s;
                });
                held.Add(socket);
                await socket.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: web\r\n\r\n"));
                var answer = new byte[512];
                Assert.True(await socket.ReceiveAsync(answer) > 0); // a task answered: the connection went all the way
            }

            await Task.Delay(L4BackendMetricsRefresh); // the next scrape reads the kernel again
            var before = await ConntrackPerTaskAsync(tasks);
            var metrics = await Shell.CheckedAsync("curl", "-s", "-m", "5", "--unix-socket", "/run/mesh/lab/mesh-n3.sock", "http://mesh/metrics");
            var after = await ConntrackPerTaskAsync(tasks);

            var gauge = metrics.Split('\n')
                .Where(l => l.StartsWith("mesh_l4_backend_connections{", StringComparison.Ordinal) && l.Contains("service=\"web\"", StringComparison.Ordinal) && l.Contains("port=\"8080/tcp\"", StringComparison.Ordinal))
                .ToDictionary(l => (Label(l, "task"), Label(l, "state")), l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
            Assert.Equal(AllTasks, gauge.Keys.Select(k => k.Item1).Distinct().Order(StringComparer.Ordinal));
            foreach (var task in AllTasks)
            {
                Assert.True(gauge[(task, "active")] >= 2, $"{task}: {gauge[(task, "active")]} active connections, at least the 2 held ones expected\n{metrics}");
                foreach (var state in new[] { "active", "inactive" })
                {
                    var (was, now) = (before.GetValueOrDefault((task, state)), after.GetValueOrDefault((task, state)));
                    Assert.True(gauge[(task, state)] >= Math.Min(was, now) && gauge[(task, state)] <= Math.Max(was, now), $"{task} {state}: the gauge says {gauge[(task, state)]}, conntrack -L {was} then {now}");
                }
            }
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    /// <summary>How long one kernel read serves scrapes (<c>L4BackendMetrics.DefaultRefreshInterval</c>), and a margin.</summary>
    private static readonly TimeSpan L4BackendMetricsRefresh = Mesh.Ingress.Telemetry.L4.L4BackendMetrics.DefaultRefreshInterval + TimeSpan.FromMilliseconds(500);

    private static string Label(string sample, string name) => sample.Split($"{name}=\"")[1].Split('"')[0];

    /// <summary>
    /// conntrack-tools' listing of node 3's sandbox: per task and state (active: ESTABLISHED, inactive: any other), the
    /// TCP entries whose original destination port is 8080 and whose reply comes from the task's ingress address, port
    /// 80 (the DNAT to it).
    /// </summary>
    private static async Task<Dictionary<(string Task, string State), long>> ConntrackPerTaskAsync(Dictionary<string, string> tasks)
    {
        var listing = await Shell.CheckedAsync("ip", "netns", "exec", "mesh-n3-ingress", "conntrack", "-L", "-p", "tcp");
        var counts = new Dictionary<(string, string), long>();
        foreach (var line in listing.Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var sources = fields.Where(f => f.StartsWith("src=", StringComparison.Ordinal)).Select(f => f[4..]).ToList();
            var sports = fields.Where(f => f.StartsWith("sport=", StringComparison.Ordinal)).Select(f => f[6..]).ToList();
            var dports = fields.Where(f => f.StartsWith("dport=", StringComparison.Ordinal)).Select(f => f[6..]).ToList();
            if (sources.Count == 2 && dports.Count == 2 && sports.Count == 2 && dports[0] == "8080" && sports[1] == "80" && tasks.TryGetValue(sources[1], out var task))
            {
                var key = (task, fields.Contains("ESTABLISHED") ? "active" : "inactive");
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }

        return counts;
    }
}
