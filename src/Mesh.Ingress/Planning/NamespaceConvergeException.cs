using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Planning;

/// <summary>
/// A namespace that did not converge, naming it and the object that failed. The message carries the cause's
/// <see cref="ErrorSummary"/> only (a tool's full output stays in the inner exception, for the node's log).
/// </summary>
/// <param name="namespace">"host", "sandbox (PATH)" or "task NAME (netns PATH)".</param>
/// <param name="object">The object that failed: "host rules", "sandbox rules", "task rules", "task VIPs", "resolv.conf", …</param>
public sealed class NamespaceConvergeException(string @namespace, string @object, Exception inner)
    : Exception($"{@namespace}: {@object}: {ErrorSummary.Of(inner)}", inner)
{
    public string Namespace => @namespace;

    public string Object => @object;

    /// <summary>Runs one object's convergence, naming the namespace and the object if it fails (cancellation passes).</summary>
    public static async Task<T> Wrap<T>(string @namespace, string @object, Func<Task<T>> converge, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(converge);
        try
        {
            return await converge().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not NamespaceConvergeException && (e is not OperationCanceledException || !ct.IsCancellationRequested))
        {
            throw new NamespaceConvergeException(@namespace, @object, e);
        }
    }

    public static string Host(NetworkNamespacePath netns) => netns?.Path is null ? "host" : $"host ({netns.Path})";

    public static string Sandbox(NetworkNamespacePath netns) => $"sandbox ({netns})";

    public static string Task(string task, NetworkNamespacePath netns) => $"task {task} (netns {netns})";
}
