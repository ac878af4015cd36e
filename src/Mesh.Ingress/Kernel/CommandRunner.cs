using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Mesh.Ingress.Kernel;

public sealed record CommandResult(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// A kernel tool failed or hung: names the command line. <see cref="Exception.Message"/> carries what the tool
/// printed (truncated) and is for the node's own log only; <see cref="Summary"/> is what may be shown to API
/// clients: the tool's output can echo anything it read (nft's <c>include</c> prints the included file's lines),
/// so the summary never contains it.
/// </summary>
public sealed class CommandFailedException : Exception
{
    private const int MaxOutput = 2000;
    private const int MaxCommand = 200;

    public CommandFailedException(string command, CommandResult result)
        : base($"'{command}' exited with {result.ExitCode}: {Trim(result.Stderr.Length > 0 ? result.Stderr : result.Stdout)}")
    {
        Result = result;
        Summary = $"'{Bound(command)}' exited with {result.ExitCode.ToString(CultureInfo.InvariantCulture)} (its output is in the node's log)";
    }

    private CommandFailedException(string command, TimeSpan timeout)
        : base($"'{command}' did not finish within {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s and was killed")
    {
        Result = new CommandResult(-1, "", "");
        TimedOut = true;
        Summary = $"'{Bound(command)}' did not finish within {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s and was killed";
    }

    public CommandResult Result { get; }

    /// <summary>The command was killed after its timeout (it did not exit by itself).</summary>
    public bool TimedOut { get; }

    /// <summary>Command line and exit code only: safe to store and serve (<c>GET /v1/info</c>).</summary>
    public string Summary { get; }

    public static CommandFailedException Timeout(string command, TimeSpan timeout) => new(command, timeout);

    private static string Trim(string s) => s.Length > MaxOutput ? s[..MaxOutput] + "…" : s.Trim();

    private static string Bound(string command) => command.Length > MaxCommand ? command[..MaxCommand] + "…" : command;
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

/// <summary>
/// Starts each tool as a child process with a deadline: a tool that hangs (a namespace stuck in teardown, a
/// lock held by someone else's nft) is killed with its children after <see cref="Timeout"/> and reported as a
/// <see cref="CommandFailedException"/> naming the command, so one stuck child never stalls the sync loop.
/// </summary>
public sealed class ProcessCommandRunner(TimeSpan timeout) : ICommandRunner
{
    /// <summary>Long enough for one <c>nft -f</c> or <c>iptables-restore</c> of tens of thousands of rules on a busy machine.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public ProcessCommandRunner()
        : this(DefaultTimeout)
    {
    }

    public TimeSpan Timeout => timeout;

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

        // One deadline for everything that can block: feeding stdin (a tool that never reads it), waiting for the
        // exit, and draining its output (a grandchild that keeps the pipes open).
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(deadline.Token);
            var stderr = process.StandardError.ReadToEndAsync(deadline.Token);
            try
            {
                if (standardInput is not null)
                {
                    await process.StandardInput.WriteAsync(standardInput.AsMemory(), deadline.Token).ConfigureAwait(false);
                }

                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The tool closed its stdin (exited early): its exit code and stderr say why.
            }

            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            return new CommandResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Kill(process);
            throw CommandFailedException.Timeout(CommandRunnerExtensions.Describe(file, arguments), timeout);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(TimeSpan.FromSeconds(5));
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
