using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Security;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>A real etcd with <c>--client-cert-auth</c>: the store works with the cluster CA's client certificate, and not without it.</summary>
[RequiresEtcd]
public sealed class EtcdTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-etcd-tls-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static EtcdStoreOptions Options(EtcdProcess etcd) => EtcdStoreOptions.Parse(etcd.ConnectionString) with
    {
        ConnectTimeout = TimeSpan.FromSeconds(1),
        RequestTimeout = TimeSpan.FromSeconds(2),
        TransportRetries = 1,
        TransportRetryDelay = TimeSpan.FromMilliseconds(20),
    };

    private (string Cert, string Key) Issue(CertificateAuthority ca, string name)
    {
        var (cert, key) = (Path.Combine(_dir, name + ".crt"), Path.Combine(_dir, name + ".key"));
        ca.Issue(name, [IPAddress.Loopback], [], TimeSpan.FromDays(1)).Save(cert, key);
        return (cert, key);
    }

    [StoreFact]
    public async Task The_store_works_over_tls_with_a_client_certificate_and_fails_without_one()
    {
        using var ca = CertificateAuthority.Create("test cluster CA", TimeSpan.FromDays(2));
        ca.Save(_dir);
        var caFile = CertificateAuthority.CertificatePath(_dir);
        // etcd's JSON gateway dials etcd itself with the server certificate, so it needs client auth too (node certificates have both).
        var server = Issue(ca, "etcd");
        var client = Issue(ca, "mesh-n1");
        var good = ClientTls.Load("--etcd-cert", client.Cert, "--etcd-key", client.Key, "--etcd-ca", caFile);
        using var etcd = await EtcdProcess.StartNewAsync(new EtcdServerTls(server.Cert, server.Key, caFile, good));

        await using (var store = new EtcdStore(Options(etcd).WithTls(good)))
        {
            Assert.StartsWith("https://", store.Options.Endpoints[0].ToString(), StringComparison.Ordinal);
            await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
            Assert.Equal("web", (await store.GetStateAsync()).Services.Single().Name);
        }

        // The CA alone (no client certificate): etcd refuses the handshake.
        var noCert = ClientTls.Load("--etcd-cert", null, "--etcd-key", null, "--etcd-ca", caFile);
        await using (var store = new EtcdStore(Options(etcd).WithTls(noCert)))
        {
            await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetStateAsync());
        }

        // A client certificate from another CA: refused too.
        var otherDir = Path.Combine(_dir, "other");
        using var other = CertificateAuthority.Create("another CA", TimeSpan.FromDays(2));
        other.Save(otherDir);
        var (foreignCert, foreignKey) = (Path.Combine(otherDir, "n.crt"), Path.Combine(otherDir, "n.key"));
        other.Issue("mesh-n1", [IPAddress.Loopback], [], TimeSpan.FromDays(1)).Save(foreignCert, foreignKey);
        var foreign = ClientTls.Load("--etcd-cert", foreignCert, "--etcd-key", foreignKey, "--etcd-ca", caFile);
        await using (var store = new EtcdStore(Options(etcd).WithTls(foreign)))
        {
            await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetStateAsync());
        }

        // Plain http to the TLS port: no answer either.
        await using (var store = new EtcdStore(Options(etcd)))
        {
            await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetStateAsync());
        }

        // And a server whose certificate is not from the CA we trust: the client refuses it.
        var trustsOther = ClientTls.Load("--etcd-cert", client.Cert, "--etcd-key", client.Key, "--etcd-ca", CertificateAuthority.CertificatePath(otherDir));
        await using (var store = new EtcdStore(Options(etcd).WithTls(trustsOther)))
        {
            await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetStateAsync());
        }

        // Nothing the refused clients did changed anything: the state reads back the same with the right certificate.
        await using (var store = new EtcdStore(Options(etcd).WithTls(good)))
        {
            Assert.Equal(["web"], (await store.GetStateAsync()).Services.Select(s => s.Name));
        }
    }
}
