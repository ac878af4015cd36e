using System.Diagnostics;
using System.Text;

namespace Mesh.Ingress.Kernel;

public sealed record CommandResult(int ExitCode, string Stdout, string Stderr);

/// <summary>A kernel tool failed: names the command line and what it printed.</summary>
public sealed class CommandFailedException(string command, CommandResult result)
    : Exception($"'{command}' exited with {result.ExitCode}: {Trim(result.Stderr.Length > 0 ? result.Stderr : result.Stdout)}")
{
    public CommandResult Result { get; } = result;

    private static string Trim(string s) => s.Length > 2000 ? s[..2000] + "…" : s.Trim();
}

/// <summary>Runs kernel tools (ip, iptables-restore, nft, ...). Argument arrays only: no shell ever sees user data.</summary>
public interface ICommandRunner
{
    Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default);
}

public static class CommandRunnerExtensions
{
    /// <summary>Runs and throws <see cref="CommandFailedException"/> on a non-zero exit.</summary>
    public static async Task<string> RunCheckedAsync(this ICommandRunner runner, string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
    {
        var result = await runner.RunAsync(file, arguments, standardInput, cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0 ? result.Stdout : throw new CommandFailedException(Describe(file, arguments), result);
    }

    public static string Describe(string file, IReadOnlyList<string> arguments) =>
        string.Join(' ', arguments.Prepend(file).Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a));
}

public sealed class ProcessCommandRunner : ICommandRunner
{
    public async Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CommandFailedException(CommandRunnerExtensions.Describe(file, arguments), new CommandResult(127, "", $"cannot start {file}: {e.Message}"));
        }

        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken).ConfigureAwait(false);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new CommandResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}
