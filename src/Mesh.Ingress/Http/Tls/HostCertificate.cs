using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Ingress.Http.Tls;

/// <summary>
/// One host's certificate as loaded from <c>&lt;host&gt;.crt</c>/<c>&lt;host&gt;.key</c>: the leaf with its key, the chain
/// context SslStream presents (the leaf and the intermediates the file carries), and a digest of both files so an
/// unchanged pair is not parsed again on the next scan.
/// </summary>
public sealed record HostCertificate(string Host, X509Certificate2 Leaf, SslStreamCertificateContext Context, string FilesDigest)
{
    /// <summary>The leaf's SHA-256 fingerprint (hex), as logs and tests name it.</summary>
    public string Thumbprint => Leaf.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);
}
