using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Cli;

/// <summary>Turns failures into one line on stderr and an exit code a shell user can act on.</summary>
public static class CliErrors
{
    public const int Rejected = 1;
    public const int Usage = 2;
    public const int Unreachable = 3;
    public const int Failed = 4;

    /// <summary>
    /// Parses an option's value with the model's rules; a bad value is bad usage (exit 2), told as "--option: why",
    /// not a request the daemon rejected (exit 1).
    /// </summary>
    public static T Argument<T>(string option, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (ValidationException e)
        {
            var why = e.Message.StartsWith(e.Field + ": ", StringComparison.Ordinal) ? e.Message[(e.Field.Length + 2)..] : e.Message;
            throw new ArgumentException($"{option} {why}", e);
        }
    }

    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ValidationException or ConflictException or NotFoundException)
        {
            await Console.Error.WriteLineAsync($"mesh: error: {e.Message}").ConfigureAwait(false);
            return Rejected;
        }
        catch (StoreUnavailableException e)
        {
            await Console.Error.WriteLineAsync($"mesh: unavailable: {e.Message} (is 'mesh daemon' running, with its store reachable? name its API with --api or MESH_API; the lab's nodes are unix:///run/mesh/lab/mesh-n1.sock ...)").ConfigureAwait(false);
            return Unreachable;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            await Console.Error.WriteLineAsync($"mesh: error: {e.Message}").ConfigureAwait(false);
            return Usage;
        }
        catch (Exception e) when (e is InvalidOperationException or Kernel.CommandFailedException or IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"mesh: {e.Message}").ConfigureAwait(false);
            return Failed;
        }
    }
}
