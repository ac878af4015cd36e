using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Discovery.Security;

/// <summary>
/// Trust in one cluster CA and nothing else: a peer's certificate is accepted only when it chains to this CA
/// (never to the machine's public roots, which would let any certificate a public CA sells in) and carries the
/// extended key usage the connection needs (server auth for a server, client auth for a client).
/// </summary>
public sealed class ClusterTrust
{
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private readonly X509Certificate2 _ca;

    public ClusterTrust(X509Certificate2 ca)
    {
        ArgumentNullException.ThrowIfNull(ca);
        if (ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
        {
            throw new ArgumentException($"'{ca.Subject}' is not a CA certificate (no basic constraints CA:TRUE)");
        }

        _ca = ca;
    }

    public X509Certificate2 Certificate => _ca;

    /// <summary>Loads the CA certificate a <c>--*-ca</c> option names; errors name the option.</summary>
    public static ClusterTrust Load(string option, string? path)
    {
        var ca = CredentialFile.ReadCertificate(option, path);

        try
        {
            return new ClusterTrust(ca);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{option} '{path}': {e.Message}", e);
        }
    }

    /// <summary>Whether <paramref name="certificate"/> chains to the cluster CA, is valid now and carries <paramref name="usage"/>.</summary>
    public bool IsTrusted(X509Certificate2? certificate, string usage, out string reason)
    {
        if (certificate is null)
        {
            reason = "no certificate was presented";
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // the cluster CA publishes no CRL
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(usage));
        if (!chain.Build(certificate))
        {
            reason = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            reason = $"'{certificate.Subject}' is not trusted by the cluster CA '{_ca.Subject}': {(reason.Length > 0 ? reason : "chain did not build")}";
            return false;
        }

        reason = "";
        return true;
    }

    /// <summary>
    /// For a client: the server's certificate must chain to the cluster CA and name the host that was dialled (the
    /// runtime's name check, which covers IP SANs, is kept; its chain verdict against the system roots is replaced).
    /// </summary>
    public bool ValidateServer(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if ((errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0 || certificate is null)
        {
            return false;
        }

        using var server = new X509Certificate2(certificate);
        return IsTrusted(server, ServerAuth, out _);
    }
}
