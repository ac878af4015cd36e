using System.Globalization;
using Mesh.Ingress.Http;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Trace;

/// <summary>
/// Walks an HTTP request to a node: first the connection as the kernel takes it (<see cref="Tracer"/> for tcp to the
/// same address and port: a published L4 port's DNAT takes it before any local socket), then, when it stays on the
/// node, the L7 entry listening there (<c>--http-port</c>) and what its live YARP state does with the request's Host
/// and path (<see cref="EntryMatch"/>, read from the running entry): the route, its cluster, every destination with
/// YARP's health of it, or the 404/503 the entry answers. Pure: everything it reads is in its arguments.
/// </summary>
public static class HttpTracer
{
    /// <param name="request">The request.</param>
    /// <param name="kernel">The node's kernel state.</param>
    /// <param name="entryPort">The entry's port (<c>--http-port</c>; 0: off).</param>
    /// <param name="entry">What the running entry matched for the request; null when the entry is not running.</param>
    public static TraceResult Trace(HttpTraceRequest request, NodeSnapshot kernel, int entryPort, EntryMatch? entry)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(kernel);
        var l4 = Tracer.Trace(request.Connection, kernel);
        var http = new TraceHttp(request.Host, request.Path, null, null, null, null, entry?.RoutesOfHost.Select(Describe).ToArray() ?? []);
        var result = l4 with { Protocol = "http", Http = http };
        var port = Port(request.Connection.Port);
        var address = request.Connection.Address;
        if (!kernel.IsLocal(address))
        {
            return result with { Notes = [.. result.Notes, $"the L7 entry listens on {kernel.Node}'s own addresses only: {address} is not one"] };
        }

        if (l4.Steps.Any(s => s.Rule is { } rule && IptablesRuleMatch.Option(rule, "-j") == "DNAT"))
        {
            return result with { Notes = [.. result.Notes, $"tcp/{port} is published at L4: the host's DNAT takes the connection before the L7 entry could (--http-port {Port(entryPort)})"] };
        }

        var steps = l4.Steps.ToList();
        var notes = l4.Notes.ToList();
        var host = $"node {kernel.Node}";
        var listens = kernel.LocalListeners.Contains(("tcp", request.Connection.Port));
        TraceResult Done(TraceVerdict verdict, string reason, TraceBackendSet? backends = null, TraceHttp? picked = null) =>
            result with { Steps = steps, Notes = notes.Distinct().ToArray(), Verdict = verdict, Reason = reason, Backends = backends, Http = picked ?? http };

        if (entryPort == 0 || entryPort != request.Connection.Port)
        {
            var where = entryPort == 0 ? "the L7 entry is off (--http-port 0)" : $"the L7 entry listens on tcp/{Port(entryPort)}, not {port}";
            steps.Add(new TraceStep(host, "", "", null, where));
            return listens
                ? Done(TraceVerdict.NotMesh, $"{where}; a process on {kernel.Node} itself listens on tcp/{port} and answers, not the mesh")
                : Done(TraceVerdict.Refused, $"{where}, and nothing on {kernel.Node} listens on tcp/{port}: refused (TCP reset)");
        }

        if (entry is null)
        {
            steps.Add(new TraceStep(host, "L7 entry", "", null, $"the entry is not running (it retries binding tcp/{port}: see the daemon's log)"));
            return listens
                ? Done(TraceVerdict.NotMesh, $"the L7 entry is not running and another process on {kernel.Node} listens on tcp/{port}: it answers, not the mesh")
                : Done(TraceVerdict.Refused, $"the L7 entry is not running and nothing on {kernel.Node} listens on tcp/{port}: refused (TCP reset)");
        }

        steps.Add(new TraceStep(host, "L7 entry", $"tcp/{port}", $"YARP on Kestrel, listening on 0.0.0.0:{port} (--http-port)",
            "the entry accepts the connection in the node's own namespace: the client's address is the socket's peer (no DNAT, no SNAT)"));
        var routes = entry.RouteCount.ToString(CultureInfo.InvariantCulture);
        if (entry.Route is not { } route)
        {
            steps.Add(new TraceStep(host, "L7 entry", "routes", null,
                $"none of the entry's {routes} route(s) matches Host {request.Host} path {request.Path}: the endpoint matcher picks the fallback ({entry.Fallback})"));
            var known = entry.RoutesOfHost.Count == 0
                ? $"no route has host {HostOnly(request.Host)}"
                : $"no route of host {HostOnly(request.Host)} has a prefix of {request.Path} ({string.Join(", ", entry.RoutesOfHost.Select(r => r.Id))})";
            return Done(TraceVerdict.NotFound, $"the entry answers 404 \"{HttpEntry.NotFoundBody.TrimEnd()}\": {known}");
        }

        var others = entry.RoutesOfHost.Where(r => r.Id != route.Id).ToList();
        steps.Add(new TraceStep(host, "L7 entry", "routes", Describe(route), others.Count == 0
            ? $"matches Host {request.Host} path {request.Path} (the only route of this host)"
            : $"matches Host {request.Host} path {request.Path}: of the host's {(others.Count + 1).ToString(CultureInfo.InvariantCulture)} routes the most specific that matches (lowest order: the longest prefix)"));
        if (others.Count > 0)
        {
            notes.Add($"the host's other routes: {string.Join("; ", others.Select(Describe))}");
        }

        var service = route.Service ?? route.ClusterId;
        if (entry.Cluster is not { Found: true } cluster)
        {
            steps.Add(new TraceStep(host, "L7 entry", $"cluster {route.ClusterId}", null, "YARP has no such cluster"));
            return Done(TraceVerdict.Unavailable, $"route {route.Id} names cluster {route.ClusterId}, which the entry does not have: 503", picked: http with { Route = route.Id, Service = service, Cluster = route.ClusterId });
        }

        var withCluster = http with { Route = route.Id, Service = service, Cluster = cluster.Id, LoadBalancing = cluster.LoadBalancing };
        var available = cluster.Destinations.Count(d => d.Available);
        var count = cluster.Destinations.Count.ToString(CultureInfo.InvariantCulture);
        var lb = cluster.LoadBalancing ?? "PowerOfTwoChoices"; // YARP's default when a cluster names none
        steps.Add(new TraceStep(host, "L7 entry", $"cluster {cluster.Id}",
            $"{lb}: {count} destination(s), {available.ToString(CultureInfo.InvariantCulture)} available",
            cluster.Destinations.Count == 0 ? "no destination: the service has no running task"
            : available == 0 ? "no destination is available (health): YARP has nothing to send to"
            : $"YARP picks one of the {available.ToString(CultureInfo.InvariantCulture)} available destination(s) per request ({lb}), connecting from sandbox {kernel.SandboxNamespace}"));
        var backends = new TraceBackendSet(service, cluster.Id, Selection(lb, available), Candidates(cluster, kernel));
        if (cluster.Destinations.Count == 0)
        {
            return Done(TraceVerdict.Unavailable, $"route {route.Id} matches, but cluster {cluster.Id} has no destination (service {service} has no running task): the entry answers 503", picked: withCluster);
        }

        if (available == 0)
        {
            return Done(TraceVerdict.Unavailable, $"route {route.Id} matches, but none of cluster {cluster.Id}'s {count} destinations is available (health): the entry answers 503", backends, withCluster);
        }

        notes.Add("the task sees the client's address in X-Forwarded-For and Forwarded (a client's own forwarding headers are dropped unless it is in --trusted-proxies); its socket peer is the sandbox");
        return Done(TraceVerdict.Forwarded,
            $"route {route.Id} → cluster {cluster.Id}: YARP sends it to one of {available.ToString(CultureInfo.InvariantCulture)} destination(s) of service {service}, {lb}", backends, withCluster);
    }

    /// <summary>The ingress addresses of the entry's destinations whose task runs on this node (their rules are read).</summary>
    public static IReadOnlyList<string> LocalTaskAddresses(EntryMatch? entry, NodeSnapshot kernel) =>
        entry?.Cluster?.Destinations
            .Select(d => Endpoint(d.Address)?.Address)
            .OfType<string>()
            .Where(a => kernel.Tasks.TryGetValue(a, out var task) && task.Node == kernel.Node)
            .Distinct(StringComparer.Ordinal)
            .ToArray() ?? [];

    private static List<TraceBackend> Candidates(EntryCluster cluster, NodeSnapshot kernel)
    {
        var list = new List<TraceBackend>();
        foreach (var destination in cluster.Destinations)
        {
            var (address, port) = Endpoint(destination.Address) ?? (destination.Address, 0);
            kernel.Tasks.TryGetValue(address, out var task);
            IReadOnlyList<TraceStep>? side = null;
            string? followUp = null;
            if (task is not null && task.Node == kernel.Node && kernel.LocalTaskRules.ContainsKey(address))
            {
                // The far side of a local destination: the same walk as an L4 trace to the task's address.
                side = Tracer.Trace(new TraceRequest(Discovery.Model.TransportProtocol.Tcp, address, port, null), kernel).Steps;
            }
            else if (task is not null)
            {
                followUp = $"mesh trace --node {task.Node} tcp {address}:{Port(port)}";
            }

            var health = $"active {destination.ActiveHealth}, passive {destination.PassiveHealth}";
            list.Add(new TraceBackend(list.Count, address, port, 1, task?.Name ?? destination.Id, task?.Node, destination.Available
                ? $"available ({health})"
                : $"not available, YARP skips it ({health})", side, followUp));
        }

        return list;
    }

    private static string Selection(string lb, int available) => lb switch
    {
        "RoundRobin" => $"round robin (YARP RoundRobin): each request, not each connection, takes the next of the {available.ToString(CultureInfo.InvariantCulture)} available destination(s), one counter per cluster",
        "PowerOfTwoChoices" => "power of two choices (YARP): of two random available destinations, the one with fewer requests in flight",
        "LeastRequests" => "least requests (YARP): the available destination with the fewest requests in flight",
        "Random" => "at random (YARP Random) per request",
        var other => $"YARP policy {other}, per request",
    };

    private static string Describe(EntryRoute route) => string.Create(CultureInfo.InvariantCulture,
        $"{route.Id}: hosts {string.Join(",", route.Hosts)} path {route.Path ?? "(any)"} order {route.Order ?? 0} → cluster {route.ClusterId}");

    private static string HostOnly(string host) => new Microsoft.AspNetCore.Http.HostString(host).Host;

    private static (string Address, int Port)? Endpoint(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) ? (uri.Host, uri.Port) : null;

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
}
