using System.Net;
using System.Security.Cryptography.X509Certificates;
using Mesh.Discovery.Security;

namespace Mesh.Discovery.Tests.Security;

public sealed class CertificateAuthorityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-ca-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_node_certificate_chains_to_its_ca_only_names_the_node_and_its_address_and_its_key_is_0600()
    {
        using (var created = CertificateAuthority.Create("test CA", TimeSpan.FromDays(10)))
        {
            created.Save(_dir);
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(CertificateAuthority.KeyPath(_dir)));
        using var ca = CertificateAuthority.Load(_dir);
        var (cert, key) = (Path.Combine(_dir, "n1.crt"), Path.Combine(_dir, "n1.key"));
        ca.Issue("mesh-n1", [IPAddress.Parse("198.18.0.11")], ["node1"], TimeSpan.FromDays(5)).Save(cert, key);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));

        using var node = CertificateFiles.LoadWithKey("--tls-cert", cert, "--tls-key", key);
        Assert.True(node.HasPrivateKey);
        Assert.Equal("CN=mesh-n1", node.Subject);
        var san = node.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["mesh-n1", "node1"], san.EnumerateDnsNames());
        Assert.Equal([IPAddress.Parse("198.18.0.11")], san.EnumerateIPAddresses());
        Assert.True(node.NotAfter <= DateTime.Now.AddDays(5.01));

        var trust = ClusterTrust.Load("--tls-ca", CertificateAuthority.CertificatePath(_dir));
        Assert.True(trust.IsTrusted(node, ClusterTrust.ServerAuth, out _));
        Assert.True(trust.IsTrusted(node, ClusterTrust.ClientAuth, out _));
        Assert.False(trust.IsTrusted(null, ClusterTrust.ClientAuth, out var none));
        Assert.Contains("no certificate", none, StringComparison.Ordinal);

        // Another CA with the same name is another CA.
        using var impostor = CertificateAuthority.Create("test CA", TimeSpan.FromDays(10));
        var forged = impostor.Issue("mesh-n1", [IPAddress.Parse("198.18.0.11")], [], TimeSpan.FromDays(5));
        using var forgedCert = X509Certificate2.CreateFromPem(forged.CertificatePem);
        Assert.False(trust.IsTrusted(forgedCert, ClusterTrust.ClientAuth, out var why));
        Assert.Contains("not trusted by the cluster CA", why, StringComparison.Ordinal);

        // The CA's own certificate is not a node certificate, and a CA is never overwritten.
        Assert.Throws<InvalidOperationException>(() => ca.Issue("mesh-n1", [], [], TimeSpan.FromDays(1)).Save(cert, key));
        using var again = CertificateAuthority.Create("x", TimeSpan.FromDays(1));
        Assert.Throws<InvalidOperationException>(() => again.Save(_dir));
    }

    [Fact]
    public void Credential_files_name_the_option_when_missing_empty_open_or_not_pem()
    {
        var missing = Path.Combine(_dir, "missing");
        Assert.StartsWith("--etcd-ca '", Assert.Throws<ArgumentException>(() => ClusterTrust.Load("--etcd-ca", missing)).Message, StringComparison.Ordinal);
        var empty = Path.Combine(_dir, "empty");
        File.WriteAllText(empty, " \n");
        Assert.Contains("is empty", Assert.Throws<ArgumentException>(() => ClusterTrust.Load("--etcd-ca", empty)).Message, StringComparison.Ordinal);
        var junk = Path.Combine(_dir, "junk");
        File.WriteAllText(junk, "not a certificate");
        Assert.Contains("holds no PEM certificate", Assert.Throws<ArgumentException>(() => ClusterTrust.Load("--etcd-ca", junk)).Message, StringComparison.Ordinal);
        var open = Path.Combine(_dir, "open-secret");
        File.WriteAllText(open, "secret");
        File.SetUnixFileMode(open, UnixFileMode.UserRead | UnixFileMode.OtherRead);
        Assert.Contains("chmod 600", Assert.Throws<ArgumentException>(() => CredentialFile.Read("--etcd-key", open, secret: true)).Message, StringComparison.Ordinal);
        Assert.Contains("is a directory", Assert.Throws<ArgumentException>(() => CredentialFile.Read("--etcd-key", _dir, secret: true)).Message, StringComparison.Ordinal);

        using var ca = CertificateAuthority.Create("leaf is not a CA", TimeSpan.FromDays(1));
        var leaf = Path.Combine(_dir, "leaf.crt");
        File.WriteAllText(leaf, ca.Issue("n", [], [], TimeSpan.FromDays(1)).CertificatePem);
        Assert.Contains("not a CA certificate", Assert.Throws<ArgumentException>(() => ClusterTrust.Load("--tls-ca", leaf)).Message, StringComparison.Ordinal);
    }
}
