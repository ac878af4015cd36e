namespace Mesh.Discovery.Model;

public enum TaskState
{
    Running,

    /// <summary>Still registered but must receive no new connections (weight 0 / removed from backend sets).</summary>
    Draining,

    /// <summary>
    /// Its node is not alive (etcd: the node's lease expired): kept in the state so operators see it and nothing
    /// takes its addresses, but out of every backend set and DNS answer until the node is back.
    /// </summary>
    NodeDown,
}
