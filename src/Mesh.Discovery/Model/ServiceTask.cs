namespace Mesh.Discovery.Model;

/// <summary>One running container of a service, as the runtime reports it.</summary>
public sealed record ServiceTask
{
    /// <summary>Task name as Docker forms it: <c>&lt;service&gt;.&lt;slot&gt;</c>, e.g. <c>web.1</c>. Unique.</summary>
    public required string Name { get; init; }
    public required string Service { get; init; }
    public required string Node { get; init; }

    /// <summary>Network name → the task's IP on it. The store allocates what the runtime leaves out.</summary>
    /// <remarks>Held as a <see cref="StringMap"/> whatever it is given as: one per task (memory at 10,000 services).</remarks>
    [System.Text.Json.Serialization.JsonConverter(typeof(StringMap.Converter))]
    public IReadOnlyDictionary<string, string> Addresses { get; init => field = StringMap.Of(value); } = StringMap.Empty;

    /// <summary>
    /// Other names of this task (Docker's container aliases): each resolves to the task's addresses. Tasks may
    /// share an alias (the name then answers every one of them); services and task names may not.
    /// </summary>
    public IReadOnlyList<string> Aliases { get; init => field = value is { Count: 0 } ? [] : value; } = []; // no empty list per task

    /// <summary>Path of the task's network namespace on its node (for the task-side rules and DNS).</summary>
    public string? NetnsPath { get; init; }

    /// <summary>When set, the daemon on the task's node writes the task's resolv.conf here (nameserver 127.0.0.11).</summary>
    public string? ResolvConfPath { get; init; }

    /// <summary>
    /// The container runtime's ID of the container this task is (CNI_CONTAINERID), when a CNI runtime attached it:
    /// how <c>mesh-cni</c> finds the task again on DEL and CHECK. Unique in the cluster.
    /// </summary>
    public string? ContainerId { get; init; }

    public TaskState State { get; init; } = TaskState.Running;
}
