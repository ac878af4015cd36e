namespace Mesh.Ingress.Kernel;

/// <summary>Where a command runs: the daemon's own network namespace, or another one by path.</summary>
public sealed record NetworkNamespacePath(string? Path)
{
    public const string NamedRoot = "/var/run/netns";

    public static NetworkNamespacePath Current { get; } = new((string?)null);

    public static NetworkNamespacePath Named(string name) => new($"{NamedRoot}/{name}");

    /// <summary>Wraps a tool invocation with <c>nsenter --net=PATH</c> when the target is another namespace.</summary>
    public (string File, IReadOnlyList<string> Arguments) Wrap(string file, IReadOnlyList<string> arguments) =>
        Path is null ? (file, arguments) : ("nsenter", [$"--net={Path}", "--", file, .. arguments]);

    public override string ToString() => Path ?? "(own namespace)";
}

public static class NamespacedRunnerExtensions
{
    public static Task<CommandResult> RunInAsync(this ICommandRunner runner, NetworkNamespacePath netns, string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
    {
        var (f, a) = netns.Wrap(file, arguments);
        return runner.RunAsync(f, a, standardInput, cancellationToken);
    }

    public static Task<string> RunCheckedInAsync(this ICommandRunner runner, NetworkNamespacePath netns, string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
    {
        var (f, a) = netns.Wrap(file, arguments);
        return runner.RunCheckedAsync(f, a, standardInput, cancellationToken);
    }
}
