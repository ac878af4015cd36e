using Mesh.Ingress.Kernel;
using Mesh.Ingress.Planning;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// The backend choice: per published service in the ingress sandbox (packet walk steps 2-4), and per VIP
/// service east-west inside each local task's namespace. Executors of the <see cref="NodePlan"/>'s
/// <see cref="BackendChoice"/> parts: they diff against the kernel and change only what differs.
/// </summary>
public interface IDataplane
{
    /// <summary>"nftables" or "ipvs", as shown by the API, <c>mesh lab status</c> and <c>mesh doctor</c>.</summary>
    string Name { get; }

    /// <summary>Converges the ingress sandbox to <paramref name="desired"/>; returns whether the kernel changed.</summary>
    Task<bool> ConvergeSandboxAsync(BackendChoice desired, CancellationToken cancellationToken);

    /// <summary>
    /// Converges east-west load balancing in one task's namespace (VIP → the service's task addresses on each network
    /// the task shares); with <see cref="BackendChoice.None"/>, removes whatever Mesh put there.
    /// </summary>
    Task<bool> ConvergeTaskAsync(NetworkNamespacePath netns, BackendChoice desired, CancellationToken cancellationToken);

    /// <summary>Removes whatever this dataplane put in the ingress sandbox (when the node now runs the other one).</summary>
    Task<bool> RemoveFromSandboxAsync(CancellationToken cancellationToken);
}
