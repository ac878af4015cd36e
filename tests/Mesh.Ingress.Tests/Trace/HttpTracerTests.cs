using Mesh.Discovery.Model;
using Mesh.Ingress.Http;
using Mesh.Ingress.Trace;

namespace Mesh.Ingress.Tests.Trace;

/// <summary>
/// The L7 trace on node 3's kernel state captured from the lab (Data/, as <see cref="TracerTests"/>) and the entry's
/// match as <see cref="EntryRouteMatcher"/> reads it from YARP (the matcher itself: <see cref="EntryRouteMatcherTests"/>).
/// </summary>
public sealed class HttpTracerTests
{
    private static string Data(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Trace", "Data", name));

    private static NodeSnapshot Node3(bool entryListens = true) => new(
        "mesh-n3",
        "nftables",
        "mesh-n3-ingress",
        "mesh-gwbridge",
        new HashSet<string> { "127.0.0.1", "198.18.0.13", "172.18.0.1" },
        entryListens ? new HashSet<(string, int)> { ("tcp", 80) } : new HashSet<(string, int)>(),
        Data("host-nat.txt"),
        Data("host-filter.txt"),
        Data("sandbox.json"),
        new Dictionary<string, TracedTask>
        {
            ["10.255.0.6"] = new("web.1", "web", "mesh-n1"),
            ["10.255.0.7"] = new("web.2", "web", "mesh-n2"),
            ["10.255.0.8"] = new("web.3", "web", "mesh-n1"),
        },
        new Dictionary<string, string>());

    private static readonly EntryRoute WebRoute = new("web:web.test/", ["web.test"], "/{**rest}", -1, "web:80", "web");
    private static readonly EntryRoute ApiRoute = new("api:web.test/api", ["web.test"], "/api/{**rest}", -4, "api:80", "api");

    private static EntryCluster WebCluster(params bool[] available) => new("web:80", true, "RoundRobin",
        [.. new[] { ("web.1", "10.255.0.6"), ("web.2", "10.255.0.7"), ("web.3", "10.255.0.8") }
            .Select((d, i) => new EntryDestination(d.Item1, $"http://{d.Item2}:80", "unknown", available.Length > i && !available[i] ? "unhealthy" : "unknown", available.Length <= i || available[i]))]);

    private static EntryMatch Matched(EntryCluster? cluster = null) => new(WebRoute, cluster ?? WebCluster(), [ApiRoute, WebRoute], 2, null);

    private static TraceResult Run(NodeSnapshot kernel, EntryMatch? entry, string host = "web.test", string path = "/x", int port = 80, int entryPort = 80, string addr = "198.18.0.13") =>
        HttpTracer.Trace(HttpTraceRequest.Parse(addr, port.ToString(System.Globalization.CultureInfo.InvariantCulture), host, path, "198.18.0.100"), kernel, entryPort, entry);

    [Fact]
    public void A_routed_request_walks_the_host_rules_to_the_entry_its_route_and_cluster_and_lists_every_destination()
    {
        var trace = Run(Node3(), Matched());

        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        Assert.Equal("http", trace.Protocol);
        Assert.Equal(
            [("nat", "PREROUTING"), ("nat", "MESH-INGRESS"), ("L7 entry", "tcp/80"), ("L7 entry", "routes"), ("L7 entry", "cluster web:80")],
            trace.Steps.Select(s => (s.Table, s.Chain)));
        Assert.Equal("-j RETURN", trace.Steps[1].Rule); // port 80 is not published at L4: the connection stays on the node
        Assert.Equal("web:web.test/: hosts web.test path /{**rest} order -1 → cluster web:80", trace.Steps[3].Rule);
        Assert.Contains("most specific", trace.Steps[3].Result, StringComparison.Ordinal);
        var http = trace.Http!;
        Assert.Equal(("web.test", "/x", "web:web.test/", "web", "web:80", "RoundRobin"), (http.Host, http.Path, http.Route, http.Service, http.Cluster, http.LoadBalancing));
        Assert.Equal([
            "api:web.test/api: hosts web.test path /api/{**rest} order -4 → cluster api:80",
            "web:web.test/: hosts web.test path /{**rest} order -1 → cluster web:80"], http.RoutesOfHost);
        Assert.Equal("web", trace.Backends!.Service);
        Assert.Equal("web:80", trace.Backends.Mark);
        Assert.Equal(
            [("web.1", "mesh-n1", "mesh trace --node mesh-n1 tcp 10.255.0.6:80"), ("web.2", "mesh-n2", "mesh trace --node mesh-n2 tcp 10.255.0.7:80"), ("web.3", "mesh-n1", "mesh trace --node mesh-n1 tcp 10.255.0.8:80")],
            trace.Backends.Candidates.Select(c => (c.Task, c.Node, c.FollowUp)));
        Assert.All(trace.Backends.Candidates, c => Assert.Equal("available (active unknown, passive unknown)", c.Health));
        Assert.Contains("route web:web.test/ → cluster web:80", trace.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void On_a_node_running_destinations_their_task_side_is_read()
    {
        var node1 = Node3() with
        {
            Node = "mesh-n1",
            LocalAddresses = new HashSet<string> { "127.0.0.1", "198.18.0.11" },
            LocalTaskRules = new Dictionary<string, string> { ["10.255.0.6"] = Data("task-web.1.txt") },
        };
        Assert.Equal(["10.255.0.6", "10.255.0.8"], HttpTracer.LocalTaskAddresses(Matched(), node1));

        var trace = Run(node1, Matched(), addr: "198.18.0.11");
        var web1 = trace.Backends!.Candidates[0];
        Assert.Equal("-d 10.255.0.6/32 -p tcp -m tcp --dport 80 -j ACCEPT", Assert.Single(web1.TaskSide!).Rule);
        Assert.Null(web1.FollowUp);
        Assert.Null(trace.Backends.Candidates[2].TaskSide); // web.3's rules were not read: it says where to ask
    }

    [Fact]
    public void An_unknown_host_or_a_path_no_route_has_is_the_entrys_404()
    {
        var trace = Run(Node3(), new EntryMatch(null, null, [], 2, "Fallback {**path}"), host: "nope.test");
        Assert.Equal(TraceVerdict.NotFound, trace.Verdict);
        Assert.Equal("the entry answers 404 \"no route for this host and path\": no route has host nope.test", trace.Reason);
        Assert.Null(trace.Backends);
        Assert.Null(trace.Http!.Route);
        Assert.Contains("Fallback {**path}", trace.Steps[^1].Result, StringComparison.Ordinal);

        var path = Run(Node3(), new EntryMatch(null, null, [ApiRoute], 2, "Fallback {**path}"), path: "/x");
        Assert.Contains("no route of host web.test has a prefix of /x (api:web.test/api)", path.Reason, StringComparison.Ordinal);
        Assert.StartsWith(HttpEntry.NotFoundBody.TrimEnd(), path.Reason["the entry answers 404 \"".Length..], StringComparison.Ordinal);
    }

    [Fact]
    public void A_route_without_destinations_or_with_none_available_is_the_entrys_503()
    {
        var none = Run(Node3(), Matched(new EntryCluster("web:80", true, "RoundRobin", [])));
        Assert.Equal(TraceVerdict.Unavailable, none.Verdict);
        Assert.Contains("no destination (service web has no running task): the entry answers 503", none.Reason, StringComparison.Ordinal);
        Assert.Null(none.Backends);

        var unhealthy = Run(Node3(), Matched(WebCluster(false, false, false)));
        Assert.Equal(TraceVerdict.Unavailable, unhealthy.Verdict);
        Assert.All(unhealthy.Backends!.Candidates, c => Assert.Equal("not available, YARP skips it (active unknown, passive unhealthy)", c.Health));

        var one = Run(Node3(), Matched(WebCluster(true, false, true)));
        Assert.Equal(TraceVerdict.Forwarded, one.Verdict);
        Assert.Contains("one of 2 destination(s)", one.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_running_entry_on_the_port_the_connection_is_refused_or_another_process_answers()
    {
        Assert.Equal(TraceVerdict.Refused, Run(Node3(entryListens: false), null).Verdict);
        var other = Run(Node3(), null);
        Assert.Equal(TraceVerdict.NotMesh, other.Verdict);
        Assert.Contains("the L7 entry is not running", other.Reason, StringComparison.Ordinal);

        var off = Run(Node3(entryListens: false), null, entryPort: 0);
        Assert.Equal(TraceVerdict.Refused, off.Verdict);
        Assert.Contains("the L7 entry is off (--http-port 0)", off.Reason, StringComparison.Ordinal);
        Assert.Contains("listens on tcp/8081, not 80", Run(Node3(), null, entryPort: 8081).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_port_published_at_l4_is_taken_by_the_host_dnat_before_the_entry_and_another_address_is_routed_on()
    {
        var l4 = Run(Node3(), Matched(), port: 8080, entryPort: 8080);
        Assert.Equal(TraceVerdict.Forwarded, l4.Verdict);
        Assert.Contains(l4.Steps, s => s.Table == "ip mesh");
        Assert.DoesNotContain(l4.Steps, s => s.Table == "L7 entry");
        Assert.Contains(l4.Notes, n => n.StartsWith("tcp/8080 is published at L4", StringComparison.Ordinal));

        var routed = Run(Node3(), Matched(), addr: "198.18.0.12");
        Assert.Equal(TraceVerdict.NotMesh, routed.Verdict);
        Assert.Contains(routed.Notes, n => n.Contains("198.18.0.12 is not one", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("198.18.0.13", "80", null, "/", "host")]
    [InlineData("198.18.0.13", "80", "web test", "/", "host")]
    [InlineData("198.18.0.13", "80", "web.test", "x", "path")]
    [InlineData("198.18.0.13", "80", "web.test", "/a?b=1", "path")]
    [InlineData("198.18.0.13", "80", "web.test", "/a b", "path")]
    [InlineData("web", "80", "web.test", "/", "addr")]
    [InlineData("198.18.0.13", "0", "web.test", "/", "port")]
    public void Bad_input_names_the_field(string addr, string port, string? host, string path, string field)
    {
        var e = Assert.Throws<ValidationException>(() => HttpTraceRequest.Parse(addr, port, host, path, null));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void The_text_form_names_the_request_the_cluster_and_the_verdict()
    {
        using var text = new StringWriter();
        TraceText.Write(text, Run(Node3(), Matched()));
        var output = text.ToString();
        Assert.StartsWith("http 198.18.0.13:80 Host web.test path /x from 198.18.0.100, on mesh-n3 (nftables dataplane, live kernel state and the running L7 entry's YARP state)", output, StringComparison.Ordinal);
        Assert.Contains("service web (cluster web:80): 3 candidate(s), round robin (YARP RoundRobin)", output, StringComparison.Ordinal);
        Assert.Contains("health: available (active unknown, passive unknown)", output, StringComparison.Ordinal);
        Assert.Contains("verdict: forwarded — route web:web.test/", output, StringComparison.Ordinal);

        using var notFound = new StringWriter();
        TraceText.Write(notFound, Run(Node3(), new EntryMatch(null, null, [], 2, "Fallback {**path}"), host: "nope.test"));
        Assert.Contains("verdict: not_found — the entry answers 404", notFound.ToString(), StringComparison.Ordinal);
    }
}
