namespace Mesh.Ingress.Trace;

/// <summary>
/// What the running L7 entry does with one request (Host, path), read from its live YARP state by
/// <see cref="EntryRouteMatcher"/>: the route its endpoint matcher picks (null: none, the entry's fallback answers 404),
/// that route's cluster with every destination, and the routes of the same host for context. Pure data.
/// </summary>
public sealed record EntryMatch(
    EntryRoute? Route,
    EntryCluster? Cluster,
    IReadOnlyList<EntryRoute> RoutesOfHost,
    int RouteCount,
    string? Fallback);

/// <summary>A YARP route as the entry holds it: id, hosts, path pattern, order (lower wins), and its service.</summary>
public sealed record EntryRoute(string Id, IReadOnlyList<string> Hosts, string? Path, int? Order, string ClusterId, string? Service);

/// <summary>A YARP cluster as the entry holds it; <see cref="Found"/> is false when the route names a cluster YARP does not have.</summary>
public sealed record EntryCluster(string Id, bool Found, string? LoadBalancing, IReadOnlyList<EntryDestination> Destinations);

/// <summary>
/// One destination with YARP's health of it (active and passive: unknown, healthy, unhealthy) and whether it is among
/// the cluster's available destinations, the ones YARP's load balancer picks from.
/// </summary>
public sealed record EntryDestination(string Id, string Address, string ActiveHealth, string PassiveHealth, bool Available);
