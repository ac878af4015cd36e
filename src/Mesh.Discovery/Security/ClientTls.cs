using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Discovery.Security;

/// <summary>
/// What a client of a cluster listener (the store holder's API for <c>--join</c>, etcd, a CLI) needs for TLS: the
/// CA the server must chain to, and optionally its own certificate and key to present (mutual TLS).
/// </summary>
public sealed class ClientTls(ClusterTrust trust, X509Certificate2? certificate)
{
    public ClusterTrust Trust { get; } = trust;

    public X509Certificate2? Certificate { get; } = certificate;

    /// <summary>
    /// Loads the files named by a group of options (<c>--tls-cert/--tls-key/--tls-ca</c>, <c>--etcd-*</c>): the CA
    /// is required, the certificate and key come together or not at all. Errors name the option.
    /// </summary>
    public static ClientTls Load(string certOption, string? certPath, string keyOption, string? keyPath, string caOption, string? caPath)
    {
        if (caPath is null)
        {
            throw new ArgumentException($"{caOption} is required with {certOption}/{keyOption}: the server's certificate is checked against that CA only");
        }

        var trust = ClusterTrust.Load(caOption, caPath);
        return new ClientTls(trust, certPath is null && keyPath is null ? null : CertificateFiles.LoadWithKey(certOption, certPath, keyOption, keyPath));
    }

    /// <summary>TLS settings for one <see cref="SocketsHttpHandler"/>: present our certificate, accept only the cluster CA's servers.</summary>
    public SslClientAuthenticationOptions ToSslOptions()
    {
        var options = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => Trust.ValidateServer(certificate, errors),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (Certificate is { } own)
        {
            options.ClientCertificates = [own];
            // Always ours, whatever acceptable issuers the server lists (or does not list).
            options.LocalCertificateSelectionCallback = (_, _, _, _, _) => own;
        }

        return options;
    }
}

/// <summary>A certificate with its private key from two PEM files, as <c>mesh ca</c> writes them.</summary>
public static class CertificateFiles
{
    public static X509Certificate2 LoadWithKey(string certOption, string? certPath, string keyOption, string? keyPath)
    {
        if (certPath is null || keyPath is null)
        {
            throw new ArgumentException($"{certOption} and {keyOption} go together: give both or neither");
        }

        var certificate = CredentialFile.ReadCertificate(certOption, certPath);
        var keyPem = CredentialFile.Read(keyOption, keyPath, secret: true);

        using (certificate)
        {
            try
            {
                return certificate.GetKeyAlgorithm() switch
                {
                    "1.2.840.10045.2.1" => WithKey(certificate, ECDsa.Create(), keyPem),
                    _ => WithKey(certificate, RSA.Create(), keyPem),
                };
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw new ArgumentException($"{keyOption} '{keyPath}' is not the PEM private key of {certOption} '{certPath}': {e.Message}", e);
            }
        }
    }

    private static X509Certificate2 WithKey(X509Certificate2 certificate, ECDsa key, string pem)
    {
        using (key)
        {
            key.ImportFromPem(pem);
            return certificate.CopyWithPrivateKey(key);
        }
    }

    private static X509Certificate2 WithKey(X509Certificate2 certificate, RSA key, string pem)
    {
        using (key)
        {
            key.ImportFromPem(pem);
            return certificate.CopyWithPrivateKey(key);
        }
    }
}
