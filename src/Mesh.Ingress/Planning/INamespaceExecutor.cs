using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Planning;

/// <summary>
/// Converges one network namespace to its part of the <see cref="NodePlan"/>: reads (or trusts what it knows of) the
/// kernel, changes only what differs, and returns whether anything changed. A failure is that namespace's alone: the
/// reconciler goes on with the others and reports it as a <see cref="NamespaceConvergeException"/>.
/// </summary>
public interface INamespaceExecutor<in TDesired>
{
    Task<bool> ConvergeAsync(NetworkNamespacePath netns, TDesired desired, CancellationToken cancellationToken);
}
