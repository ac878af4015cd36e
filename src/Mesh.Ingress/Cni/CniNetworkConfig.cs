using System.Text.Json;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Cni;

/// <summary>One attachment a GC request says is still in use (<c>cni.dev/valid-attachments</c>, spec 1.1.0).</summary>
public sealed record CniAttachment(string ContainerId, string InterfaceName);

/// <summary>
/// The network configuration the runtime sends on stdin (spec "Network configuration"): the standard keys
/// (<c>cniVersion</c>, <c>name</c>, <c>type</c>) and Mesh's own: <c>service</c> (the containers on this network become
/// tasks of it), <c>api</c> (the local daemon's unix socket) and <c>mtu</c> (the overlay's). Keys Mesh does not know are
/// ignored, as runtimes add their own (<c>runtimeConfig</c>, <c>args</c>, <c>prevResult</c>).
/// </summary>
public sealed record CniNetworkConfig
{
    /// <summary>The lab's and Docker's overlay MTU: a 1500-byte underlay minus the 50 bytes of VXLAN.</summary>
    public const int DefaultMtu = 1450;

    public const string DefaultApi = "unix:///run/mesh/mesh.sock";

    public required string CniVersion { get; init; }

    public required string Name { get; init; }

    public required string Type { get; init; }

    public string? Service { get; init; }

    public string Api { get; init; } = DefaultApi;

    public int Mtu { get; init; } = DefaultMtu;

    /// <summary>GC only: the attachments the runtime still has; every other attachment of this network may go.</summary>
    public IReadOnlyList<CniAttachment>? ValidAttachments { get; init; }

    /// <summary>Most a configuration may be: they are a few hundred bytes; this keeps a runaway writer from costing memory.</summary>
    public const int MaxBytes = 1 << 20;

    public static CniNetworkConfig Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxBytes)
        {
            throw new CniException(CniErrorCode.DecodingFailure, $"the network configuration is larger than {MaxBytes} bytes");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new CniException(CniErrorCode.DecodingFailure, "the network configuration on stdin is not JSON", e.Message);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new CniException(CniErrorCode.DecodingFailure, "the network configuration on stdin is not a JSON object");
            }

            var version = RequiredString(root, "cniVersion");
            if (!CniVersions.IsSupported(version))
            {
                throw new CniException(CniErrorCode.IncompatibleVersion, $"cniVersion '{Validate.Printable(version)}' is not supported (supported: {string.Join(", ", CniVersions.Supported)})");
            }

            var config = new CniNetworkConfig
            {
                CniVersion = version,
                Name = RequiredString(root, "name"),
                Type = RequiredString(root, "type"),
                Service = OptionalString(root, "service"),
                Api = OptionalString(root, "api") ?? DefaultApi,
                Mtu = OptionalInt(root, "mtu") ?? DefaultMtu,
                ValidAttachments = Attachments(root),
            };
            if (config.Service is { } service && !Validate.IsLabel(service))
            {
                throw Invalid($"service '{Validate.Printable(service)}' is not a service name");
            }

            if (!config.Api.StartsWith("unix:///", StringComparison.Ordinal) || config.Api.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            {
                throw Invalid($"api '{Validate.Printable(config.Api)}' is not the daemon's unix socket (unix:///run/mesh/mesh.sock)");
            }

            if (config.Mtu is < 576 or > 9000)
            {
                throw Invalid($"mtu {config.Mtu} is outside 576-9000");
            }

            return config;
        }
    }

    /// <summary>The service, which every command but VERSION, STATUS and GC needs.</summary>
    public string RequireService() => Service ?? throw Invalid("the network configuration names no 'service'");

    private static string RequiredString(JsonElement root, string key) =>
        OptionalString(root, key) ?? throw Invalid($"'{key}' is missing");

    private static string? OptionalString(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 and <= 1024 } s
            ? s
            : throw Invalid($"'{key}' must be a non-empty string of at most 1024 characters");
    }

    private static int? OptionalInt(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n : throw Invalid($"'{key}' must be an integer");
    }

    private static IReadOnlyList<CniAttachment>? Attachments(JsonElement root)
    {
        if (!root.TryGetProperty("cni.dev/valid-attachments", out var list) || list.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (list.ValueKind != JsonValueKind.Array)
        {
            throw Invalid("'cni.dev/valid-attachments' must be an array");
        }

        var attachments = new List<CniAttachment>();
        foreach (var item in list.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw Invalid("'cni.dev/valid-attachments' must hold objects with containerID and ifname");
            }

            var id = RequiredString(item, "containerID");
            attachments.Add(new CniAttachment(id, OptionalString(item, "ifname") ?? ""));
        }

        return attachments;
    }

    private static CniException Invalid(string message) => new(CniErrorCode.InvalidConfig, message);
}
