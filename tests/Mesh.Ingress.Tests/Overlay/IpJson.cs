using System.Text.Json;
using Mesh.Ingress.Overlay;

namespace Mesh.Ingress.Tests.Overlay;

/// <summary>
/// iproute2's JSON (<c>ip -j -d addr show</c>, <c>bridge -j fdb show</c>, <c>ip -j neigh show</c>) as the overlays'
/// kernel state: how the tests write a kernel by hand, and how the lab tests read one with an independent tool.
/// The daemon itself reads the kernel through rtnetlink (<see cref="OverlayKernel"/>).
/// </summary>
internal static class IpJson
{
    /// <summary>Parses <c>ip -j -d addr show</c>.</summary>
    public static IReadOnlyDictionary<string, KernelLink> Links(string json)
    {
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        var links = new Dictionary<string, KernelLink>(StringComparer.Ordinal);
        foreach (var link in doc.RootElement.EnumerateArray())
        {
            if (Text(link, "ifname") is not { } name)
            {
                continue;
            }

            var up = link.TryGetProperty("flags", out var flags) && flags.ValueKind == JsonValueKind.Array && flags.EnumerateArray().Any(f => f.ValueKind == JsonValueKind.String && f.GetString() == "UP");
            var mtu = link.TryGetProperty("mtu", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt32() : 0;
            var ipv4 = link.TryGetProperty("addr_info", out var info) && info.ValueKind == JsonValueKind.Array
                ? info.EnumerateArray().Where(a => Text(a, "family") == "inet").Select(a => Text(a, "local")).OfType<string>().ToArray()
                : [];
            string? kind = null;
            VxlanSettings? vxlan = null;
            if (link.TryGetProperty("linkinfo", out var linkinfo) && linkinfo.ValueKind == JsonValueKind.Object)
            {
                kind = Text(linkinfo, "info_kind");
                if (kind == "vxlan" && linkinfo.TryGetProperty("info_data", out var data) && data.ValueKind == JsonValueKind.Object)
                {
                    vxlan = new VxlanSettings(Number(data, "id"), Number(data, "port"), Text(data, "local"), Text(data, "link"), Flag(data, "learning"), Flag(data, "proxy"));
                }
            }

            links[name] = new KernelLink(name, kind, up, Text(link, "master"), mtu, ipv4, vxlan);
        }

        return links;
    }

    /// <summary>Parses <c>bridge -j fdb show dev VXLAN</c>: only the device's own (<c>self</c>) entries; the bridge's are the bridge's.</summary>
    public static IReadOnlyList<KernelFdbEntry> Fdb(string json)
    {
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        return doc.RootElement.EnumerateArray()
            .Where(e => e.TryGetProperty("flags", out var f) && f.ValueKind == JsonValueKind.Array && f.EnumerateArray().Any(x => x.ValueKind == JsonValueKind.String && x.GetString() == "self"))
            .Where(e => Text(e, "mac") is not null)
            .Select(e => KernelFdbEntry.Parse(Text(e, "mac")!, Text(e, "dst"), Text(e, "state") == "permanent"))
            .ToList();
    }

    /// <summary>Parses <c>ip -j neigh show dev VXLAN</c>.</summary>
    public static IReadOnlyList<KernelNeighbour> Neighbours(string json)
    {
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        return doc.RootElement.EnumerateArray()
            .Where(e => Text(e, "dst") is not null)
            .Select(e => KernelNeighbour.Parse(Text(e, "dst")!, Text(e, "lladdr"),
                e.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.Array && s.EnumerateArray().Any(x => x.ValueKind == JsonValueKind.String && x.GetString() == "PERMANENT")))
            .ToList();
    }

    private static string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int Number(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) ? n : -1;

    private static bool Flag(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
}
