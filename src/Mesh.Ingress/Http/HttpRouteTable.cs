using System.Globalization;
using System.Net;
using Mesh.Discovery.Model;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.SessionAffinity;

namespace Mesh.Ingress.Http;

/// <summary>
/// The L7 entry's configuration as a pure function of the cluster state: a YARP route per service route (host +
/// path prefix) and a cluster per service and target port whose destinations are the service's running tasks'
/// ingress addresses. Most specific wins: a longer prefix gets a lower <see cref="RouteConfig.Order"/>.
/// </summary>
public static class HttpRouteTable
{
    /// <summary>Metadata key on each route: the service it belongs to (for metrics).</summary>
    public const string ServiceKey = "mesh.service";

    /// <param name="health">
    /// This node's health verdicts: a service with a health check loses its unhealthy tasks' destinations (all kept
    /// when every one is unhealthy: fail open) and gets YARP's passive health too (transport failures take a
    /// destination out until the next interval's reactivation), which acts on the traffic itself between probes.
    /// </param>
    public static (IReadOnlyList<RouteConfig> Routes, IReadOnlyList<ClusterConfig> Clusters) Build(ClusterState state, HealthChecks.BackendHealth? health = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        var routes = new List<RouteConfig>();
        var clusters = new List<ClusterConfig>();
        foreach (var service in state.Services.Where(s => s.Routes.Count > 0).OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            var tasks = state.Tasks
                .Where(t => t.Service == service.Name && t.State == TaskState.Running && t.Addresses.ContainsKey(OverlayNetwork.IngressName))
                .OrderBy(t => t.Name, StringComparer.Ordinal)
                .ToList();
            if (health is not null && service.HealthCheck is not null && tasks.Any(t => !health.IsUnhealthy(t.Name)))
            {
                tasks = tasks.Where(t => !health.IsUnhealthy(t.Name)).ToList();
            }

            foreach (var target in service.Routes.Select(r => r.Target).Distinct().Order())
            {
                clusters.Add(new ClusterConfig
                {
                    ClusterId = ClusterId(service.Name, target),
                    LoadBalancingPolicy = Policy(service),
                    SessionAffinity = Affinity(service),
                    HealthCheck = service.HealthCheck is { } check ? PassiveHealth(check) : null,
                    HttpRequest = BackendRequest(service.BackendProtocol),
                    Destinations = tasks.ToDictionary(
                        t => t.Name,
                        t => new DestinationConfig { Address = string.Create(CultureInfo.InvariantCulture, $"http://{t.Addresses[OverlayNetwork.IngressName]}:{target}") },
                        StringComparer.Ordinal),
                });
            }

            foreach (var route in service.Routes)
            {
                routes.Add(new RouteConfig
                {
                    RouteId = RouteId(service.Name, route),
                    ClusterId = ClusterId(service.Name, route.Target),
                    Order = -route.PathPrefix.Length,
                    Match = new RouteMatch { Hosts = [route.Host], Path = PathPattern(route.PathPrefix) },
                    Metadata = new Dictionary<string, string> { [ServiceKey] = service.Name },
                });
            }
        }

        return (routes, clusters);
    }

    /// <summary>
    /// YARP's passive health: a destination whose requests fail at the transport (connect refused, reset, timeout) at
    /// the policy's rate is left out until its reactivation, one probe interval later (the active check decides
    /// after that). YARP's default availability policy routes to all when none is left (fail open, as Mesh's own).
    /// </summary>
    public static HealthCheckConfig PassiveHealth(Discovery.Model.HealthCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        return new HealthCheckConfig
        {
            Passive = new PassiveHealthCheckConfig
            {
                Enabled = true,
                Policy = "TransportFailureRate",
                ReactivationPeriod = TimeSpan.FromMilliseconds(check.IntervalMs),
            },
        };
    }

    /// <summary>
    /// YARP's policy for the service's <c>--lb</c>: RoundRobin (as the L4 mesh spreads), LeastRequests,
    /// PowerOfTwoChoices, or Mesh's <see cref="MaglevLoadBalancingPolicy"/> (consistent hash of the client's address),
    /// which <c>--affinity source-ip</c> also uses (the store refuses source-ip with the load-based policies).
    /// </summary>
    public static string Policy(ClusterService service)
    {
        ArgumentNullException.ThrowIfNull(service);
        return service.Affinity == Discovery.Model.Affinity.SourceIp ? MaglevLoadBalancingPolicy.PolicyName : service.LoadBalancing switch
        {
            LoadBalancing.LeastRequests => LoadBalancingPolicies.LeastRequests,
            LoadBalancing.PowerOfTwo => LoadBalancingPolicies.PowerOfTwoChoices,
            LoadBalancing.Maglev => MaglevLoadBalancingPolicy.PolicyName,
            _ => LoadBalancingPolicies.RoundRobin,
        };
    }

    /// <summary>Name of the affinity cookie (<c>--affinity cookie</c>).</summary>
    public const string AffinityCookie = "Mesh-Affinity";

    /// <summary>
    /// <c>--affinity cookie</c>: YARP's HashCookie policy, whose cookie holds a hash of the destination's ID (the task's
    /// name) rather than YARP's default Cookie policy's Data Protection token, which only the node that issued it could
    /// read: the client keeps its task whichever node its next request reaches. A cookie naming a task that is gone or
    /// unhealthy is redistributed by the policy above (and replaced).
    /// </summary>
    public static SessionAffinityConfig? Affinity(ClusterService service)
    {
        ArgumentNullException.ThrowIfNull(service);
        return service.Affinity != Discovery.Model.Affinity.Cookie ? null : new SessionAffinityConfig
        {
            Enabled = true,
            Policy = SessionAffinityConstants.Policies.HashCookie,
            FailurePolicy = SessionAffinityConstants.FailurePolicies.Redistribute,
            AffinityKeyName = AffinityCookie,
            Cookie = new SessionAffinityCookieConfig { HttpOnly = true, SameSite = Microsoft.AspNetCore.Http.SameSiteMode.Lax, IsEssential = true },
        };
    }

    /// <summary>
    /// <c>--backend-protocol h2c</c>: HTTP/2 with prior knowledge to the tasks, exactly (a task that answers only
    /// HTTP/1.1 fails the request instead of being downgraded to: gRPC cannot work over 1.1 anyway). Null keeps YARP's
    /// default, which offers HTTP/2 but, on a cleartext http:// destination, always ends up speaking HTTP/1.1.
    /// </summary>
    public static ForwarderRequestConfig? BackendRequest(BackendProtocol protocol) => protocol != BackendProtocol.H2c ? null : new ForwarderRequestConfig
    {
        Version = HttpVersion.Version20,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    /// <summary>A prefix matches itself and everything below it, segment-wise ("/api" matches /api and /api/x, not /apix).</summary>
    public static string PathPattern(string prefix) => prefix == "/" ? "/{**rest}" : prefix + "/{**rest}";

    public static string RouteId(string service, ServiceRoute route) => $"{service}:{route.Host}{route.PathPrefix}";

    public static string ClusterId(string service, int target) => string.Create(CultureInfo.InvariantCulture, $"{service}:{target}");
}
