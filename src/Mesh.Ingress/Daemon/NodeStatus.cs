namespace Mesh.Ingress.Daemon;

/// <summary>What this daemon has done so far; served at <c>GET /v1/info</c>.</summary>
public sealed class NodeStatus
{
    private long _appliedRevision = -1;

    public required string Node { get; init; }
    public required string Store { get; init; }
    public string Dataplane { get; set; } = "";
    public string? DataplaneReason { get; set; }

    public long AppliedRevision => Interlocked.Read(ref _appliedRevision);

    public string? LastError { get; set; }

    public DateTimeOffset? LastSync { get; set; }

    /// <summary>A sync loop finished a pass: the revision every part of the node has applied (-1: not yet), and the error to show.</summary>
    public void Report(long appliedRevision, string? error)
    {
        Interlocked.Exchange(ref _appliedRevision, appliedRevision);
        LastError = error;
        LastSync = DateTimeOffset.UtcNow;
    }
}
