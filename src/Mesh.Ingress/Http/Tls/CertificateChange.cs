namespace Mesh.Ingress.Http.Tls;

public enum CertificateChangeKind
{
    Loaded,
    Replaced,
    Removed,
    Refused,
}

/// <summary>What one scan of the certificates directory did for one host (or one file it could not use).</summary>
public sealed record CertificateChange(CertificateChangeKind Kind, string Host, string File, string Detail);
