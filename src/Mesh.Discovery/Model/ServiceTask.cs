namespace Mesh.Discovery.Model;

/// <summary>One running container of a service, as the runtime reports it.</summary>
public sealed record ServiceTask
{
    /// <summary>Task name as Docker forms it: <c>&lt;service&gt;.&lt;slot&gt;</c>, e.g. <c>web.1</c>. Unique.</summary>
    public required string Name { get; init; }
    public required string Service { get; init; }
    public required string Node { get; init; }

    /// <summary>Network name → the task's IP on it. The store allocates what the runtime leaves out.</summary>
    public IReadOnlyDictionary<string, string> Addresses { get; init; } = new Dictionary<string, string>();

    /// <summary>Path of the task's network namespace on its node (for the task-side rules and DNS).</summary>
    public string? NetnsPath { get; init; }

    /// <summary>When set, the daemon on the task's node writes the task's resolv.conf here (nameserver 127.0.0.11).</summary>
    public string? ResolvConfPath { get; init; }

    public TaskState State { get; init; } = TaskState.Running;
}
