using Mesh.Discovery.Model;

namespace Mesh.Discovery.Store;

/// <summary>What a user asks for when creating a service; the store adds the allocations.</summary>
public sealed record ServiceSpec
{
    public string? Name { get; init; }
    public ServiceMode Mode { get; init; } = ServiceMode.Vip;
    public IReadOnlyList<PublishedPort>? Ports { get; init; }

    /// <summary>HTTP routes through the L7 entry (see <see cref="ClusterService.Routes"/>).</summary>
    public IReadOnlyList<ServiceRoute>? Routes { get; init; }

    /// <summary>The health check (see <see cref="ClusterService.HealthCheck"/>).</summary>
    public HealthCheck? HealthCheck { get; init; }

    /// <summary>The load-balancing policy (see <see cref="ClusterService.LoadBalancing"/>); round-robin when absent.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("lb")]
    public LoadBalancing? LoadBalancing { get; init; }

    /// <summary>The affinity (see <see cref="ClusterService.Affinity"/>); none when absent.</summary>
    public Affinity? Affinity { get; init; }

    /// <summary>How the L7 entry speaks to the tasks (see <see cref="ClusterService.BackendProtocol"/>); http1 when absent.</summary>
    public BackendProtocol? BackendProtocol { get; init; }

    public IReadOnlyList<string>? Networks { get; init; }

    /// <summary>Other DNS names of the service (see <see cref="ClusterService.Aliases"/>).</summary>
    public IReadOnlyList<string>? Aliases { get; init; }
}

/// <summary>What <c>mesh service update</c> changes on an existing service: each field present replaces the service's own.</summary>
public sealed record ServiceUpdate
{
    [System.Text.Json.Serialization.JsonPropertyName("lb")]
    public LoadBalancing? LoadBalancing { get; init; }

    public Affinity? Affinity { get; init; }
}

/// <summary>What a runtime reports when a container starts. Missing name and addresses are allocated.</summary>
public sealed record TaskSpec
{
    public string? Name { get; init; }
    public string? Service { get; init; }
    public string? Node { get; init; }
    public IReadOnlyDictionary<string, string>? Addresses { get; init; }
    public string? NetnsPath { get; init; }

    /// <summary>Other DNS names of the task (see <see cref="ServiceTask.Aliases"/>).</summary>
    public IReadOnlyList<string>? Aliases { get; init; }

    /// <summary>Ask the task's node to write the task's resolv.conf at this path (the embedded DNS).</summary>
    public string? ResolvConfPath { get; init; }

    /// <summary>The runtime's container ID (see <see cref="ServiceTask.ContainerId"/>).</summary>
    public string? ContainerId { get; init; }

    /// <summary>
    /// <c>starting</c> when the container's server may not listen yet (mesh-cni at CNI ADD): the task's node makes it
    /// running once its port answers. Running when absent; no other state may be asked for.
    /// </summary>
    public TaskState? State { get; init; }
}

/// <summary>What the daemon of a starting task's node reports: <c>running</c> (its port answered) or <c>failed</c> (it never did).</summary>
public sealed record TaskUpdate
{
    public TaskState? State { get; init; }
}

public sealed record NodeSpec
{
    public string? Name { get; init; }
    public string? AdvertiseAddress { get; init; }
}

public sealed record NetworkSpec
{
    public string? Name { get; init; }
    public string? Subnet { get; init; }
    public int Vni { get; init; }
}
