using Mesh.Ingress.Kernel;
using Mesh.Ingress.Planning;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// A node that restarts with the other dataplane (ipvs ↔ nftables) would otherwise keep the old one's objects:
/// IPVS services and marks, or the <c>ip mesh</c> tables, still steering traffic past the new dataplane. This
/// removes them once per namespace, after the new dataplane has programmed it. <paramref name="other"/> is null
/// when the other dataplane cannot exist on this kernel (no IPVS): then there is nothing to look for.
/// </summary>
public sealed partial class DataplaneSwitchCleanup(IDataplane? other, ILogger<DataplaneSwitchCleanup> logger)
{
    private const string SandboxKey = "";
    private readonly HashSet<string> _done = new(StringComparer.Ordinal);

    public Task<bool> SandboxAsync(CancellationToken cancellationToken) =>
        OnceAsync(SandboxKey, "the ingress sandbox", d => d.RemoveFromSandboxAsync(cancellationToken));

    public Task<bool> TaskAsync(NetworkNamespacePath netns, CancellationToken cancellationToken) =>
        OnceAsync(netns.Path!, netns.Path!, d => d.ConvergeTaskAsync(netns, BackendChoice.None, cancellationToken));

    /// <summary>Forgets a namespace that is gone, so one created again at the same path is looked at again.</summary>
    public void Forget(NetworkNamespacePath netns) => _done.Remove(netns.Path!);

    private async Task<bool> OnceAsync(string key, string where, Func<IDataplane, Task<bool>> remove)
    {
        if (other is null || _done.Contains(key))
        {
            return false;
        }

        try
        {
            var removed = await remove(other).ConfigureAwait(false);
            if (removed)
            {
                LogRemoved(other.Name, where);
            }

            return removed;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Leftovers of the other dataplane must not stop this one: say so once and go on.
            LogRemoveFailed(e, other.Name, where);
            return false;
        }
        finally
        {
            _done.Add(key);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Removed the {Dataplane} dataplane's leftovers from {Where} (this node switched dataplanes)")]
    private partial void LogRemoved(string dataplane, string where);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove the {Dataplane} dataplane's leftovers from {Where}")]
    private partial void LogRemoveFailed(Exception exception, string dataplane, string where);
}
