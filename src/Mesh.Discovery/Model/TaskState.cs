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

    /// <summary>
    /// Registered before its server listens (mesh-cni registers a container at CNI ADD, before its process starts):
    /// its addresses are taken and its own DNS answers, but it is in no backend set and no DNS answer until the
    /// daemon of its node finds its port open and makes it <see cref="Running"/> (<see cref="StateTransitions"/>).
    /// </summary>
    Starting,

    /// <summary>
    /// Was <see cref="Starting"/> and its port did not accept a connection within the start timeout: never routed to,
    /// shown as such until the runtime removes it (a failed container is the runtime's to restart or remove).
    /// </summary>
    Failed,
}
