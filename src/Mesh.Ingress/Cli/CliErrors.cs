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
            await Console.Error.WriteLineAsync($"mesh: unavailable: {e.Message} (is 'mesh daemon' running, with its store reachable? set --api or MESH_API)").ConfigureAwait(false);
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
