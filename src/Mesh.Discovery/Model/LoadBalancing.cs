using System.Text.Json.Serialization;

namespace Mesh.Discovery.Model;

/// <summary>
/// How a service's ingress picks a task (<c>--lb</c>; JSON <c>lb</c>, written as the CLI spells it). East-west VIP
/// traffic stays round robin whatever this says: the policy is the ingress's (published ports, routes, the relay).
/// </summary>
public enum LoadBalancing
{
    /// <summary>Each new connection (L4) or request (L7) to the next task: nft numgen, IPVS rr, YARP RoundRobin.</summary>
    [JsonStringEnumMemberName("round-robin")]
    RoundRobin,

    /// <summary>The task with the fewest requests in flight (YARP LeastRequests): L7 only, the kernel cannot count requests.</summary>
    [JsonStringEnumMemberName("least-requests")]
    LeastRequests,

    /// <summary>The lesser loaded of two random tasks (YARP PowerOfTwoChoices): L7 only, as least-requests.</summary>
    [JsonStringEnumMemberName("power-of-two")]
    PowerOfTwo,

    /// <summary>
    /// Consistent hashing of the client's address (Maglev, Eisenbud et al. 2016): a client keeps its task, and a task
    /// coming or going moves only ~1/N of the clients. nft jhash over a Maglev table, IPVS mh, the relay and YARP alike.
    /// </summary>
    [JsonStringEnumMemberName("maglev")]
    Maglev,
}

/// <summary>What keeps a client on the same task (<c>--affinity</c>; JSON <c>affinity</c>).</summary>
public enum Affinity
{
    [JsonStringEnumMemberName("none")]
    None,

    /// <summary>L7 only: YARP's session affinity cookie (HashCookie: the same on every node).</summary>
    [JsonStringEnumMemberName("cookie")]
    Cookie,

    /// <summary>By the client's address: the Maglev hash (nft, relay, YARP), IPVS persistence (or mh).</summary>
    [JsonStringEnumMemberName("source-ip")]
    SourceIp,
}

/// <summary>The combinations of <see cref="LoadBalancing"/>, <see cref="Affinity"/> and a service's ports and routes Mesh accepts.</summary>
public static class BalancingRules
{
    public static string Name(LoadBalancing lb) => lb switch
    {
        LoadBalancing.RoundRobin => "round-robin",
        LoadBalancing.LeastRequests => "least-requests",
        LoadBalancing.PowerOfTwo => "power-of-two",
        LoadBalancing.Maglev => "maglev",
        _ => lb.ToString(),
    };

    public static string Name(Affinity affinity) => affinity switch
    {
        Affinity.None => "none",
        Affinity.Cookie => "cookie",
        Affinity.SourceIp => "source-ip",
        _ => affinity.ToString(),
    };

    public static LoadBalancing ParseLb(string field, string? value) => value?.ToLowerInvariant() switch
    {
        "round-robin" => LoadBalancing.RoundRobin,
        "least-requests" => LoadBalancing.LeastRequests,
        "power-of-two" => LoadBalancing.PowerOfTwo,
        "maglev" => LoadBalancing.Maglev,
        _ => throw new ValidationException(field, $"'{Validate.Printable(value)}' is not round-robin, least-requests, power-of-two or maglev"),
    };

    public static Affinity ParseAffinity(string field, string? value) => value?.ToLowerInvariant() switch
    {
        "none" => Affinity.None,
        "cookie" => Affinity.Cookie,
        "source-ip" => Affinity.SourceIp,
        _ => throw new ValidationException(field, $"'{Validate.Printable(value)}' is not none, cookie or source-ip"),
    };

    /// <summary>
    /// Refuses what could not be honoured: least-requests and power-of-two count HTTP requests, which only the L7 entry
    /// sees (a published port is balanced by the kernel or the relay per connection, which cannot count them), so they
    /// need routes and no published ports; a cookie needs HTTP routes (published ports of the same service keep their
    /// policy, without affinity); source-ip affinity is a hash of the client's address, which leaves nothing for a
    /// load-based policy to choose.
    /// </summary>
    public static void Check(LoadBalancing lb, Affinity affinity, IReadOnlyList<PublishedPort?> ports, IReadOnlyList<ServiceRoute> routes)
    {
        ArgumentNullException.ThrowIfNull(ports);
        ArgumentNullException.ThrowIfNull(routes);
        if (!Enum.IsDefined(lb))
        {
            throw new ValidationException("lb", "must be round-robin, least-requests, power-of-two or maglev");
        }

        if (!Enum.IsDefined(affinity))
        {
            throw new ValidationException("affinity", "must be none, cookie or source-ip");
        }

        if (lb is LoadBalancing.LeastRequests or LoadBalancing.PowerOfTwo)
        {
            if (ports.Count > 0)
            {
                throw new ValidationException("lb", $"{Name(lb)} counts HTTP requests, which only the L7 entry (--route) sees; published ports are balanced per connection by the kernel, which cannot: use round-robin or maglev, or a service with routes and no --publish");
            }

            if (routes.Count == 0)
            {
                throw new ValidationException("lb", $"{Name(lb)} balances HTTP requests: the service needs a --route");
            }

            if (affinity == Affinity.SourceIp)
            {
                throw new ValidationException("affinity", $"source-ip picks the task by a hash of the client's address, which leaves nothing for {Name(lb)} to choose: use --lb maglev (the same hash) or --affinity cookie");
            }
        }

        if (affinity == Affinity.Cookie && routes.Count == 0)
        {
            throw new ValidationException("affinity", "cookie needs HTTP: the service has no --route (for published ports use source-ip)");
        }
    }
}
