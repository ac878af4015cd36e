namespace Mesh.Ingress.Cni;

/// <summary>
/// The process edge of the plugin: environment and stdin in, result or error JSON on stdout, exit 0 or 1 (spec
/// "Plugin execution"). Every failure, expected or not, leaves as error JSON so the runtime can show it.
/// </summary>
public static class CniMain
{
    /// <summary>A runtime kills a plugin that hangs; this bounds each call ourselves, with room for a slow, busy host.</summary>
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(55);

    public static async Task<int> RunAsync()
    {
        var stdout = Console.OpenStandardOutput();
        var (output, exit) = await RunAsync(Environment.GetEnvironmentVariables(), Console.OpenStandardInput());
        await stdout.WriteAsync(output);
        await stdout.FlushAsync();
        return exit;
    }

    public static async Task<(byte[] Output, int ExitCode)> RunAsync(System.Collections.IDictionary environment, Stream stdin)
    {
        var version = CniVersions.Latest;
        try
        {
            var env = CniEnvironment.Parse(environment);
            var input = env.Command == CniCommand.Version ? ReadOnlyMemory<byte>.Empty : await ReadAsync(stdin);
            version = VersionOf(input.Span) ?? version;
            using var timeout = new CancellationTokenSource(CallTimeout);
            return await new CniPlugin().RunAsync(env, input, timeout.Token);
        }
        catch (CniException e)
        {
            return (CniResult.Error(version, e.Code, e.Message, e.Details), 1);
        }
        catch (Exception e)
        {
            return (CniResult.Error(version, CniErrorCode.Internal, "mesh-cni failed unexpectedly", $"{e.GetType().Name}: {e.Message}"), 1);
        }
    }

    private static async Task<ReadOnlyMemory<byte>> ReadAsync(Stream stdin)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = await stdin.ReadAsync(chunk)) > 0)
        {
            if (buffer.Length + n > CniNetworkConfig.MaxBytes)
            {
                throw new CniException(CniErrorCode.DecodingFailure, $"the network configuration is larger than {CniNetworkConfig.MaxBytes} bytes");
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    /// <summary>Errors answer in the configuration's version when it names a supported one.</summary>
    private static string? VersionOf(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new System.Text.Json.Utf8JsonReader(json);
            using var doc = System.Text.Json.JsonDocument.ParseValue(ref reader);
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("cniVersion", out var v)
                && v.ValueKind == System.Text.Json.JsonValueKind.String && CniVersions.IsSupported(v.GetString()!) ? v.GetString() : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
