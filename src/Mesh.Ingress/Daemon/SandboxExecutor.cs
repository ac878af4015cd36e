using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Planning;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// Converges the ingress sandbox's rules to its <see cref="SandboxPlan"/>: the dataplane's backend choice, what the
/// other dataplane left there, and the neighbour entries of task addresses that came or went since the last pass.
/// A failure names the sandbox and the object (<see cref="NamespaceConvergeException"/>).
/// </summary>
public sealed class SandboxExecutor(IDataplane dataplane, DataplaneSwitchCleanup otherDataplane, IngressSandbox sandbox) : INamespaceExecutor<SandboxPlan>
{
    /// <summary>The task ingress addresses of the last applied plan, to tell which came or went.</summary>
    private IReadOnlySet<string>? _taskAddresses;

    public async Task<bool> ConvergeAsync(NetworkNamespacePath netns, SandboxPlan desired, CancellationToken cancellationToken) =>
        (await ChangedObjects(netns, desired, cancellationToken).ConfigureAwait(false)).Count > 0;

    /// <summary>Converges the sandbox and returns the kinds of objects that changed (the dataplane's name, "other-dataplane").</summary>
    public async Task<IReadOnlyList<string>> ChangedObjects(NetworkNamespacePath netns, SandboxPlan desired, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(desired);
        if (netns != sandbox.Netns)
        {
            throw new ArgumentException($"the dataplane converges the ingress sandbox {sandbox.Netns}, not {netns}", nameof(netns));
        }

        var where = NamespaceConvergeException.Sandbox(netns);
        var changed = new List<string>();
        if (await NamespaceConvergeException.Wrap(where, $"sandbox rules ({dataplane.Name})", () => dataplane.ConvergeSandboxAsync(desired.Backends, ct), ct).ConfigureAwait(false))
        {
            changed.Add(dataplane.Name);
        }

        if (await NamespaceConvergeException.Wrap(where, "the other dataplane's leftovers", () => otherDataplane.SandboxAsync(ct), ct).ConfigureAwait(false))
        {
            changed.Add("other-dataplane");
        }

        if (_taskAddresses is { } before)
        {
            var cameOrWent = desired.TaskAddresses.Except(before).Concat(before.Except(desired.TaskAddresses)).ToList();
            await NamespaceConvergeException.Wrap(where, "stale neighbour entries", async () =>
            {
                await sandbox.ForgetNeighboursAsync(cameOrWent, ct).ConfigureAwait(false);
                return true;
            }, ct).ConfigureAwait(false);
        }

        _taskAddresses = desired.TaskAddresses;
        return changed;
    }
}
