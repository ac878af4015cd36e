namespace Mesh.Ingress.Ui;

/// <summary>What the status page shows, one JSON document per server-sent event. Every string in it is data: the page renders it as text.</summary>
public sealed record StatusSnapshot(
    long Revision,
    string ServedBy,
    DateTimeOffset At,
    string? StoreError,
    IReadOnlyList<NodeRow> Nodes,
    IReadOnlyList<ServiceRow> Services,
    IReadOnlyList<TaskRow> Tasks,
    IReadOnlyList<IngressLink> Links);

/// <param name="Alive">"up", "down" or "unknown" (this daemon cannot tell: see <see cref="AliveSource"/>).</param>
/// <param name="AliveSource">How <paramref name="Alive"/> was learnt, shown beside it.</param>
public sealed record NodeRow(
    string Name,
    string Address,
    string IngressIp,
    string Alive,
    string AliveSource,
    string? Dataplane,
    long? AppliedRevision,
    string? LastError);

public sealed record ServiceRow(
    string Name,
    string Mode,
    IReadOnlyList<string> Ports,
    IReadOnlyDictionary<string, string> Vips,
    IReadOnlyList<string> Aliases,
    IReadOnlyList<string> Networks);

/// <param name="State">The task's state in the store: running, draining or node_down (out of every backend set).</param>
public sealed record TaskRow(string Name, string Service, string Node, string State, IReadOnlyDictionary<string, string> Addresses);

/// <summary>Node <paramref name="Node"/>'s ingress sends new connections of <paramref name="Service"/> to task <paramref name="Task"/>.</summary>
public sealed record IngressLink(string Node, string Task, string Service);
