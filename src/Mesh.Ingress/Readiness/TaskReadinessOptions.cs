namespace Mesh.Ingress.Readiness;

/// <summary>How a node waits for its starting tasks (<see cref="TaskReadinessProber"/>).</summary>
public sealed record TaskReadinessOptions
{
    /// <summary>
    /// From one connect to the next. A refused connect returns at once (the task's kernel answers RST), so this is
    /// what a new task waits beyond its server's start: short, as one connect per starting task costs nothing.
    /// </summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How long one connect may take before it counts as not yet (a leg not made yet leaves ARP unanswered).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A task whose port has not accepted a connection this long after this node first saw it starting is failed.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
