namespace Mesh.Ingress.Ui;

/// <summary>Limits of the status page's live stream.</summary>
public sealed record StatusPageOptions
{
    /// <summary>Live viewers at once (each holds a connection and a watch): the next one gets 503 until one leaves.</summary>
    public int MaxClients { get; init; } = 16;

    /// <summary>A comment line this often keeps idle proxies and the browser from dropping a quiet stream.</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The longest a change the store does not announce (a node's daemon going down, this node applying a revision)
    /// takes to reach the page: each stream's watch ends at least this often and the snapshot is compared.
    /// </summary>
    public TimeSpan Recheck { get; init; } = TimeSpan.FromSeconds(1);
}
