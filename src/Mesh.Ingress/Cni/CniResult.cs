using System.Buffers;
using System.Text.Json;

namespace Mesh.Ingress.Cni;

/// <summary>
/// The JSON the plugin prints (spec "Success" / "Error" / "Version"), written by hand with <see cref="Utf8JsonWriter"/>:
/// the layout is small and fixed, and no reflection-based serializer has to warm up inside a short-lived process.
/// </summary>
public static class CniResult
{
    public const string EmbeddedDns = "127.0.0.11";

    /// <summary>
    /// ADD's result: per leg the host end (no sandbox) and the container end (sandbox = the netns), each IP pointing at
    /// its container interface, and the embedded DNS as the only nameserver.
    /// </summary>
    public static byte[] Success(string cniVersion, string netns, IReadOnlyList<CniLeg> legs) => Write(w =>
    {
        w.WriteString("cniVersion", cniVersion);
        w.WriteStartArray("interfaces");
        foreach (var leg in legs)
        {
            w.WriteStartObject();
            w.WriteString("name", leg.HostInterface);
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("name", leg.ContainerInterface);
            w.WriteString("mac", leg.Mac);
            w.WriteString("sandbox", netns);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("ips");
        for (var i = 0; i < legs.Count; i++)
        {
            w.WriteStartObject();
            w.WriteString("address", legs[i].Cidr);
            w.WriteNumber("interface", (2 * i) + 1);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("routes");
        w.WriteEndArray();
        w.WriteStartObject("dns");
        w.WriteStartArray("nameservers");
        w.WriteStringValue(EmbeddedDns);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    public static byte[] Error(string cniVersion, CniErrorCode code, string message, string? details) => Write(w =>
    {
        w.WriteString("cniVersion", cniVersion);
        w.WriteNumber("code", (int)code);
        w.WriteString("msg", message);
        if (details is not null)
        {
            w.WriteString("details", details);
        }
    });

    public static byte[] Version(string cniVersion) => Write(w =>
    {
        w.WriteString("cniVersion", cniVersion);
        w.WriteStartArray("supportedVersions");
        foreach (var v in CniVersions.Supported)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        // Relaxed escaping: the output goes to a runtime and its logs, never into HTML, and "task 'web.2'" stays readable.
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
