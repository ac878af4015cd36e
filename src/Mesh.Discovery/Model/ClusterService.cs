namespace Mesh.Discovery.Model;

/// <summary>A service as the store keeps it. <see cref="FirewallMark"/> and <see cref="Vips"/> are allocated by the store.</summary>
public sealed record ClusterService
{
    public required string Name { get; init; }
    public ServiceMode Mode { get; init; } = ServiceMode.Vip;
    public IReadOnlyList<PublishedPort> Ports { get; init; } = [];

    /// <summary>HTTP routes to the service through every node's L7 entry (<c>--route HOST[/PATH]=PORT</c>).</summary>
    public IReadOnlyList<ServiceRoute> Routes { get; init => field = value is { Count: 0 } ? [] : value; } = []; // no empty list per service

    /// <summary>The service's health check (<c>--health-path</c> / <c>--health-tcp</c>); null: every task is a backend.</summary>
    public HealthCheck? HealthCheck { get; init; }

    /// <summary>How the ingress picks a task (<c>--lb</c>, see <see cref="BalancingRules.Check"/> for what combines).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("lb")]
    public LoadBalancing LoadBalancing { get; init; } = LoadBalancing.RoundRobin;

    /// <summary>What keeps a client on its task (<c>--affinity</c>).</summary>
    public Affinity Affinity { get; init; } = Affinity.None;

    /// <summary>How the L7 entry speaks to the tasks (<c>--backend-protocol</c>): HTTP/1.1, or h2c for gRPC backends.</summary>
    public BackendProtocol BackendProtocol { get; init; } = BackendProtocol.Http1;

    /// <summary>Overlay networks the service's tasks join, besides <c>ingress</c> when ports are published.</summary>
    public IReadOnlyList<string> Networks { get; init => field = value is { Count: 0 } ? [] : value; } = [];

    /// <summary>
    /// Other names of the service on every network it joins (Docker's service network aliases): each resolves as
    /// the service name does, <c>tasks.&lt;alias&gt;</c> too. No other service or task may use them.
    /// </summary>
    public IReadOnlyList<string> Aliases { get; init => field = value is { Count: 0 } ? [] : value; } = [];

    /// <summary>Network name → VIP on that network (vip mode only).</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(StringMap.Converter))]
    public IReadOnlyDictionary<string, string> Vips { get; init => field = StringMap.Of(value); } = StringMap.Empty;

    /// <summary>The mark the ingress sandbox sets on this service's traffic (Docker starts at 0x100).</summary>
    public int FirewallMark { get; init; }
}
