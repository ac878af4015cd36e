namespace Mesh.Ingress.Cni;

/// <summary>The spec versions this plugin speaks. Results are written in the 1.x layout, which both share.</summary>
public static class CniVersions
{
    public const string Latest = "1.1.0";

    /// <summary>1.0.0 and 1.1.0: the result layout without per-IP versions; older layouts (0.x) are not produced.</summary>
    public static IReadOnlyList<string> Supported { get; } = ["1.0.0", "1.1.0"];

    public static bool IsSupported(string version) => Supported.Contains(version, StringComparer.Ordinal);

    /// <summary>STATUS and GC exist from 1.1.0 on: a 1.0.0 configuration never asks for them.</summary>
    public static bool HasStatusAndGc(string version) => version == "1.1.0";
}
