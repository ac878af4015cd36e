using System.CommandLine;
using System.Text.Json;

namespace Mesh.Ingress.Daemon.Configuration;

/// <summary>
/// The <c>--config</c> file: one JSON object whose keys are the daemon's flags without their dashes
/// (<c>{"node": "host-a", "api": ["unix:///run/mesh/mesh.sock"], "lease-ttl": 10}</c>). Comments and trailing
/// commas are allowed (people edit it by hand); an unknown or repeated key, a wrong type or a file that is not one
/// object is refused, naming the key and the file.
/// </summary>
internal static class ConfigFile
{
    /// <summary>Far above any real configuration; keeps a wrong path (a log, a device) from being read whole.</summary>
    public const int MaxBytes = 1 << 20;

    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Load(string path, IReadOnlyDictionary<string, Option> options)
    {
        byte[] bytes;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
            if (!stream.CanSeek || stream.Length > MaxBytes)
            {
                throw new ArgumentException($"--config {path}: not a regular file of at most {MaxBytes} bytes");
            }

            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"--config {path}: cannot read it: {e.Message}", e);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"--config {path}: not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ArgumentException($"--config {path}: must be one JSON object of the daemon's flags, e.g. {{\"node\": \"host-a\"}}");
            }

            var values = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                var where = $"\"{property.Name}\" in {path}";
                if (!options.TryGetValue(property.Name, out var option))
                {
                    throw new ArgumentException($"{where}: unknown key (the keys are the daemon's flags without the dashes, e.g. \"lease-ttl\"; see mesh daemon --help)");
                }

                if (!values.TryAdd(property.Name, ConfigValue.FromJson(option, property.Value, where)))
                {
                    throw new ArgumentException($"{where}: given twice");
                }
            }

            return values;
        }
    }
}
