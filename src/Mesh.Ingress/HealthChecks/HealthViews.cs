namespace Mesh.Ingress.HealthChecks;

/// <summary>One task's health as the node that answers sees it (<c>GET /v1/health</c>, <c>service inspect</c>).</summary>
/// <param name="Status">unknown, healthy or unhealthy.</param>
/// <param name="Since">When the status last changed on this node.</param>
/// <param name="LastError">What the last failed probe saw (null after a good one).</param>
public sealed record TaskHealthView(string Task, string Service, string Status, DateTimeOffset Since, string? LastError);

/// <summary>One node's view of every probed task, and the services it routes to all tasks because all are unhealthy.</summary>
public sealed record NodeHealthView(string Node, IReadOnlyList<TaskHealthView> Tasks, IReadOnlyList<string> FailOpen);

/// <summary>One service's health on the node that answers: what <c>service inspect</c> adds.</summary>
/// <param name="FailOpen">Every task is unhealthy, so this node routes to all of them rather than to none.</param>
public sealed record ServiceHealthView(string Node, bool FailOpen, IReadOnlyList<TaskHealthView> Tasks);
