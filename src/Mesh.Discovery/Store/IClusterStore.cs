using Mesh.Discovery.Model;

namespace Mesh.Discovery.Store;

/// <summary>
/// The cluster's source of truth. Every mutation validates first and changes nothing on failure
/// (<see cref="ValidationException"/>, <see cref="ConflictException"/>, <see cref="NotFoundException"/>),
/// and moves the revision forward when it changed something (a no-op, such as a node re-registering unchanged, does not).
/// </summary>
public interface IClusterStore
{
    /// <summary>The state now: read from the store at the call (what the API answers).</summary>
    Task<ClusterState> GetStateAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// A state at least as new as <paramref name="atLeastRevision"/>, for a loop that follows the store (it read one
    /// state, then a watch told it the revision moved past that one): a store that reads another one over the network
    /// (<see cref="RemoteStore"/>) shares one read among the daemon's loops that follow it instead of one read each.
    /// A store that holds the state itself has nothing to share: the state now is at least that new.
    /// </summary>
    Task<ClusterState> GetStateAsync(long atLeastRevision, CancellationToken cancellationToken = default) => GetStateAsync(cancellationToken);

    Task<OverlayNetwork> CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Registers (or re-registers, keeping its sandbox IP) a node.</summary>
    Task<ClusterNode> RegisterNodeAsync(NodeSpec spec, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes a node that is gone, freeing its ingress address (<see cref="StateTransitions.RemoveNode"/>): refused
    /// with <see cref="ConflictException"/> while tasks still run on it.
    /// </summary>
    Task RemoveNodeAsync(string name, CancellationToken cancellationToken = default);

    Task<ClusterService> CreateServiceAsync(ServiceSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Changes a service's load-balancing policy and affinity (<see cref="StateTransitions.UpdateService"/>).</summary>
    Task<ClusterService> UpdateServiceAsync(string name, ServiceUpdate update, CancellationToken cancellationToken = default);

    /// <summary>Removes a service and all its tasks.</summary>
    Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default);

    Task<ServiceTask> AddTaskAsync(TaskSpec spec, CancellationToken cancellationToken = default);

    Task RemoveTaskAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>A starting task becomes running or failed (<see cref="StateTransitions.SetTaskState"/>).</summary>
    Task<ServiceTask> UpdateTaskAsync(string name, TaskUpdate update, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until the store's revision is past <paramref name="afterRevision"/> (or <paramref name="timeout"/>
    /// passes) and returns the changes since; <see cref="WatchResult.Resync"/> when that history is gone.
    /// </summary>
    Task<WatchResult> WatchAsync(long afterRevision, TimeSpan timeout, CancellationToken cancellationToken = default);
}
