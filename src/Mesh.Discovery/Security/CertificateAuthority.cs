using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Discovery.Security;

/// <summary>
/// The cluster CA (<c>mesh ca init</c>): an ECDSA P-256 key and a self-signed CA certificate that signs one
/// certificate per node. A node certificate is good for both ends of mutual TLS (server auth for its API, client
/// auth for its joins) and names the node and its advertise address, which is what a peer dials.
/// </summary>
public sealed class CertificateAuthority : IDisposable
{
    public const string CertificateFile = "ca.crt";
    public const string KeyFile = "ca.key";

    private readonly X509Certificate2 _certificate;
    private readonly ECDsa _key;

    private CertificateAuthority(X509Certificate2 certificate, ECDsa key)
    {
        _certificate = certificate;
        _key = key;
    }

    public X509Certificate2 Certificate => _certificate;

    public static string CertificatePath(string directory) => Path.Combine(directory, CertificateFile);

    public static string KeyPath(string directory) => Path.Combine(directory, KeyFile);

    public static CertificateAuthority Create(string name, TimeSpan validity)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.Add(validity));
        using (certificate)
        {
            return new CertificateAuthority(X509CertificateLoader.LoadCertificate(certificate.Export(X509ContentType.Cert)), key);
        }
    }

    /// <summary>Writes <c>ca.crt</c> (0644) and <c>ca.key</c> (0600); an existing CA is never overwritten.</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        if (File.Exists(CertificatePath(directory)) || File.Exists(KeyPath(directory)))
        {
            throw new InvalidOperationException($"a CA already exists in {directory}: remove {CertificateFile} and {KeyFile} first to make a new one (every node certificate must then be reissued)");
        }

        PemWriter.Write(KeyPath(directory), _key.ExportPkcs8PrivateKeyPem(), secret: true);
        PemWriter.Write(CertificatePath(directory), _certificate.ExportCertificatePem(), secret: false);
    }

    public static CertificateAuthority Load(string directory)
    {
        var certificate = X509Certificate2.CreateFromPem(CredentialFile.Read("--dir", CertificatePath(directory), secret: false));
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(CredentialFile.Read("--dir", KeyPath(directory), secret: true));
        }
        catch (CryptographicException e)
        {
            key.Dispose();
            throw new ArgumentException($"--dir '{directory}': {KeyFile} is not an EC private key: {e.Message}", e);
        }

        return new CertificateAuthority(certificate, key);
    }

    /// <summary>Signs a node certificate: subject and DNS SAN <paramref name="name"/>, IP SANs <paramref name="addresses"/>.</summary>
    public IssuedCertificate Issue(string name, IReadOnlyList<IPAddress> addresses, IReadOnlyList<string> dnsNames, TimeSpan validity)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ClusterTrust.ServerAuth), new Oid(ClusterTrust.ClientAuth)], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames.Prepend(name).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            san.AddDnsName(dns);
        }

        foreach (var address in addresses)
        {
            san.AddIpAddress(address);
        }

        request.CertificateExtensions.Add(san.Build());

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // a positive serial, as RFC 5280 asks
        var now = DateTimeOffset.UtcNow;
        var notAfter = now.Add(validity) < _certificate.NotAfter ? now.Add(validity) : new DateTimeOffset(_certificate.NotAfter.ToUniversalTime());
        using var certificate = request.Create(_certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key), now.AddMinutes(-5), notAfter, serial);
        return new IssuedCertificate(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    public void Dispose()
    {
        _certificate.Dispose();
        _key.Dispose();
    }
}

/// <summary>A node certificate and its key, in PEM.</summary>
public sealed record IssuedCertificate(string CertificatePem, string KeyPem)
{
    /// <summary>Writes the certificate (0644) and the key (0600, created so, never wider); refuses to overwrite either.</summary>
    public void Save(string certificatePath, string keyPath)
    {
        foreach (var path in new[] { certificatePath, keyPath }.Where(File.Exists))
        {
            throw new InvalidOperationException($"{path} already exists: remove it first to issue a new certificate");
        }

        PemWriter.Write(keyPath, KeyPem, secret: true);
        PemWriter.Write(certificatePath, CertificatePem, secret: false);
    }
}

internal static class PemWriter
{
    /// <summary>Creates the file with its final mode (no chmod afterwards: a key is never readable by others, not even briefly).</summary>
    public static void Write(string path, string pem, bool secret)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = secret ? UnixFileMode.UserRead | UnixFileMode.UserWrite : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
        };
        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(pem.EndsWith('\n') ? pem : pem + "\n");
        writer.Flush();
        stream.Flush(flushToDisk: true);
    }
}
