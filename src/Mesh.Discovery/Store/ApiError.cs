namespace Mesh.Discovery.Store;

/// <summary>The body of every non-2xx API answer.</summary>
public sealed record ApiError(string Error, string? Field = null);
