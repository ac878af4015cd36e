namespace Mesh.Ingress.Security;

/// <summary>The daemon's credential options as given on its command line (paths, not yet read).</summary>
public sealed record ApiSecurityFiles
{
    public string? TlsCert { get; init; }
    public string? TlsKey { get; init; }
    public string? TlsCa { get; init; }
    public string? TokenFile { get; init; }

    /// <summary><c>--insecure-api</c>: the operator accepts a TCP API without any credential.</summary>
    public bool Insecure { get; init; }

    /// <summary><c>--api-group</c>: group owner of the unix socket (else the daemon's own group, root).</summary>
    public string? SocketGroup { get; init; }
}
