namespace Mesh.Ingress.Overlay;

/// <summary>
/// One change to the kernel: a tool (<c>ip</c> or <c>bridge</c>) and its arguments, run in the node's namespace.
/// <paramref name="Deferred"/>: the removal of an endpoint (or a network) that left, made at the end of the pass, once
/// the dataplane sends it no new connection: removed first, a connection to it would hang instead of being refused.
/// </summary>
public sealed record OverlayChange(string Tool, IReadOnlyList<string> Arguments, bool Deferred = false)
{
    public override string ToString() => Tool + " " + string.Join(' ', Arguments);
}
