namespace Mesh.Ingress.Trace;

/// <summary>How a traced connection ends, as a client would see it.</summary>
public enum TraceVerdict
{
    /// <summary>DNATed to one of the service's backends (the trace lists every candidate and how one is picked).</summary>
    Forwarded,

    /// <summary>Delivered to a namespace where nothing listens: TCP gets a reset, UDP an ICMP port unreachable.</summary>
    Refused,

    /// <summary>Silently discarded by a rule or a policy: the client times out.</summary>
    Dropped,

    /// <summary>Not the mesh's: no Mesh rule takes it, and the node's own stack answers it (or not).</summary>
    NotMesh,

    /// <summary>This part of the path could not be read (a task's or the sandbox's rules), or is a dataplane the trace does not know.</summary>
    Unsupported,

    /// <summary>HTTP: the L7 entry has no route for the request's Host and path, and answers 404.</summary>
    NotFound,

    /// <summary>HTTP: the route's cluster has no available destination, and the entry answers 503.</summary>
    Unavailable,
}

/// <summary>
/// Everything a new connection would meet on this node, read from the live kernel, in the order it meets it.
/// <see cref="Backends"/> is the candidate set when the service chain is reached.
/// </summary>
public sealed record TraceResult(
    string Node,
    string Dataplane,
    string Protocol,
    string Address,
    int Port,
    string? From,
    IReadOnlyList<TraceStep> Steps,
    TraceBackendSet? Backends,
    TraceVerdict Verdict,
    string Reason,
    IReadOnlyList<string> Notes,
    TraceHttp? Http = null);

/// <summary>
/// The L7 part of an <c>http</c> trace: the request's Host and path, the route the running entry's matcher picked
/// (null: none, 404), its service, cluster and load-balancing policy, and every route the entry has for that host.
/// </summary>
public sealed record TraceHttp(string Host, string Path, string? Route, string? Service, string? Cluster, string? LoadBalancing, IReadOnlyList<string> RoutesOfHost);

/// <summary>
/// One hop: where (<see cref="Namespace"/>, <see cref="Table"/>/<see cref="Chain"/>), the kernel rule or map element
/// that matched as the kernel prints it (<see cref="Rule"/>; null when nothing matched), and what it does.
/// </summary>
public sealed record TraceStep(string Namespace, string Table, string Chain, string? Rule, string Result);

/// <summary>
/// The backend choice of one service: every candidate, and how the kernel picks one per new connection
/// (<see cref="Selection"/>, e.g. round robin over a shared counter). Conntrack keeps later packets of the flow
/// on the backend chosen for its first.
/// </summary>
public sealed record TraceBackendSet(string Service, string Mark, string Selection, IReadOnlyList<TraceBackend> Candidates);

/// <summary>
/// One candidate. <see cref="Task"/> and <see cref="Node"/> come from the store (the kernel knows only the address);
/// <see cref="TaskSide"/> is the far side's rules, read live when the task runs on this node, else null (that node's
/// daemon reads them: <see cref="FollowUp"/>). <see cref="Health"/> is null: there are no health checks yet; when
/// they exist, the health source fills it here and an unhealthy candidate is shown as skipped.
/// </summary>
public sealed record TraceBackend(
    int Index,
    string Address,
    int Port,
    int Weight,
    string? Task,
    string? Node,
    string? Health,
    IReadOnlyList<TraceStep>? TaskSide,
    string? FollowUp);
