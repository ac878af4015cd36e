namespace Mesh.Ingress.Kernel;

/// <summary>
/// The few iproute2 operations the lab (<c>mesh lab</c>, acting as the container runtime and the network around the
/// nodes) runs as processes. The daemon itself uses <see cref="INetworkLinks"/> (rtnetlink).
/// </summary>
public sealed class LinkTool(ICommandRunner runner)
{
    public async Task<bool> LinkExistsAsync(NetworkNamespacePath netns, string name, CancellationToken cancellationToken)
    {
        var result = await runner.RunInAsync(netns, "ip", ["-o", "link", "show", "dev", name], null, cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0;
    }

    public Task IpAsync(NetworkNamespacePath netns, IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        runner.RunCheckedInAsync(netns, "ip", arguments, null, cancellationToken);

    /// <summary>Runs <c>ip</c> and ignores failure (used for removals of things that may already be gone).</summary>
    public Task<CommandResult> TryIpAsync(NetworkNamespacePath netns, IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        runner.RunInAsync(netns, "ip", arguments, null, cancellationToken);

    public static bool NamespaceExists(string name) => File.Exists(NetworkNamespacePath.Named(name).Path);

    public async Task EnsureNamespaceAsync(string name, CancellationToken cancellationToken)
    {
        if (!NamespaceExists(name))
        {
            await runner.RunCheckedAsync("ip", ["netns", "add", name], null, cancellationToken).ConfigureAwait(false);
        }
    }
}
