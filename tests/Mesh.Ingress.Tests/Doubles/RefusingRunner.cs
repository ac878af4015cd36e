using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Tests.Doubles;

/// <summary>Runs nothing and counts: every command "exits 1", as on a machine without the tools.</summary>
public sealed class RefusingRunner : ICommandRunner
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _calls);
        return Task.FromResult(new CommandResult(1, "", $"{file}: refused by the test"));
    }
}
