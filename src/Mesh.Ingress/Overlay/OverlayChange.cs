namespace Mesh.Ingress.Overlay;

/// <summary>One change to the kernel: a tool (<c>ip</c> or <c>bridge</c>) and its arguments, run in the node's namespace.</summary>
public sealed record OverlayChange(string Tool, IReadOnlyList<string> Arguments)
{
    public override string ToString() => Tool + " " + string.Join(' ', Arguments);
}
