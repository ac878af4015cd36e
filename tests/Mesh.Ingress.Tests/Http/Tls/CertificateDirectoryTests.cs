using Mesh.Discovery.Security;
using Mesh.Ingress.Http.Tls;

namespace Mesh.Ingress.Tests.Http.Tls;

/// <summary>The certificates directory: SNI pick, reload, and bad files refused with the old certificate kept.</summary>
public sealed class CertificateDirectoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-certs-").FullName;
    private readonly CertificateAuthority _ca = CertificateAuthority.Create("test CA", TimeSpan.FromDays(2));

    public void Dispose()
    {
        _ca.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    internal static void WritePair(string dir, string host, IssuedCertificate issued)
    {
        File.WriteAllText(Path.Combine(dir, host + ".crt"), issued.CertificatePem);
        var key = Path.Combine(dir, host + ".key");
        File.WriteAllText(key, issued.KeyPem);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private IssuedCertificate Issue(params string[] names) => _ca.Issue(names[0], [], names, TimeSpan.FromDays(1));

    private (HostCertificates Certificates, IReadOnlyList<CertificateChange> Changes) Scan(HostCertificates? previous = null) =>
        CertificateDirectory.Scan(_dir, previous ?? HostCertificates.Empty, DateTimeOffset.UtcNow);

    [Fact]
    public void Sni_picks_the_exact_host_then_a_wildcard_one_label_up_else_none()
    {
        WritePair(_dir, "web.test", Issue("web.test"));
        WritePair(_dir, "*.apps.test", Issue("*.apps.test"));
        var (certificates, changes) = Scan();

        Assert.Equal(2, changes.Count(c => c.Kind == CertificateChangeKind.Loaded));
        Assert.Equal("web.test", certificates.Select("web.test")!.Host);
        Assert.Equal("web.test", certificates.Select("WEB.test.")!.Host);
        Assert.Equal("*.apps.test", certificates.Select("shop.apps.test")!.Host);
        Assert.Null(certificates.Select("a.shop.apps.test")); // one label only, as RFC 6125
        Assert.Null(certificates.Select("apps.test"));
        Assert.Null(certificates.Select("other.test"));
        Assert.Null(certificates.Select(null)); // no SNI: no certificate (the handshake fails)
    }

    [Fact]
    public void A_replaced_pair_is_loaded_an_unchanged_one_kept_as_is_and_a_removed_one_dropped()
    {
        WritePair(_dir, "web.test", Issue("web.test"));
        WritePair(_dir, "shop.test", Issue("shop.test"));
        var (first, _) = Scan();
        var before = first.Select("web.test")!;

        WritePair(_dir, "web.test", Issue("web.test"));
        File.Delete(Path.Combine(_dir, "shop.test.crt"));
        var (second, changes) = Scan(first);

        Assert.NotEqual(before.Leaf.SerialNumber, second.Select("web.test")!.Leaf.SerialNumber);
        Assert.Contains(changes, c => c is { Kind: CertificateChangeKind.Replaced, Host: "web.test" });
        Assert.Contains(changes, c => c is { Kind: CertificateChangeKind.Removed, Host: "shop.test" });
        Assert.Null(second.Select("shop.test"));

        var (third, none) = Scan(second);
        Assert.Empty(none);
        Assert.Same(second.Select("web.test"), third.Select("web.test"));
    }

    [Fact]
    public void Bad_files_are_refused_naming_the_file_and_the_host_keeps_its_previous_certificate()
    {
        WritePair(_dir, "web.test", Issue("web.test"));
        var (good, _) = Scan();
        var serial = good.Select("web.test")!.Leaf.SerialNumber;
        var crt = Path.Combine(_dir, "web.test.crt");

        // A key of another certificate, garbage, a certificate for another name, a key readable by all, a symlink.
        var other = Issue("web.test");
        File.WriteAllText(crt, other.CertificatePem);
        AssertRefused(good, serial, "do not make a pair");

        File.WriteAllText(crt, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        AssertRefused(good, serial, "");

        WritePair(_dir, "web.test", Issue("shop.test"));
        AssertRefused(good, serial, "does not name web.test");

        WritePair(_dir, "web.test", Issue("web.test"));
        File.SetUnixFileMode(Path.Combine(_dir, "web.test.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        AssertRefused(good, serial, "chmod 600");

        var elsewhere = Path.Combine(Path.GetTempPath(), "mesh-certs-outside-" + Guid.NewGuid().ToString("N") + ".crt");
        File.WriteAllText(elsewhere, Issue("web.test").CertificatePem);
        try
        {
            File.Delete(crt);
            File.CreateSymbolicLink(crt, elsewhere);
            AssertRefused(good, serial, "symbolic link");
        }
        finally
        {
            File.Delete(elsewhere);
        }
    }

    [Fact]
    public async Task Oversized_files_fifos_and_names_that_are_not_hosts_are_refused_and_hidden_files_ignored()
    {
        File.WriteAllText(Path.Combine(_dir, "big.test.crt"), new string('A', 70 * 1024));
        WritePair(_dir, "bad_name.test", Issue("web.test"));
        File.WriteAllText(Path.Combine(_dir, ".web.test.crt.swp"), "editor");
        await Mesh.Ingress.Tests.EndToEnd.Shell.CheckedAsync("mkfifo", Path.Combine(_dir, "fifo.test.crt")); // would hang a plain open

        var (certificates, changes) = Scan();

        Assert.Empty(certificates.ByHost);
        Assert.Contains(changes, c => c.Kind == CertificateChangeKind.Refused && c.File.EndsWith("/big.test.crt", StringComparison.Ordinal) && c.Detail.Contains("larger than", StringComparison.Ordinal));
        Assert.Contains(changes, c => c.Kind == CertificateChangeKind.Refused && c.File.EndsWith("/bad_name.test.crt", StringComparison.Ordinal));
        Assert.Contains(changes, c => c.Kind == CertificateChangeKind.Refused && c.File.EndsWith("/fifo.test.crt", StringComparison.Ordinal) && c.Detail.Contains("not a regular file", StringComparison.Ordinal));
        Assert.DoesNotContain(changes, c => c.File.Contains(".swp", StringComparison.Ordinal));
    }

    [Fact]
    public void The_store_follows_the_directory_without_a_restart()
    {
        WritePair(_dir, "web.test", Issue("web.test"));
        using var store = new CertificateStore(_dir, Microsoft.Extensions.Logging.Abstractions.NullLogger<CertificateStore>.Instance, settle: TimeSpan.FromMilliseconds(50));
        store.Start();
        var first = store.Current.Select("web.test")!.Leaf.SerialNumber;

        WritePair(_dir, "web.test", Issue("web.test"));
        WritePair(_dir, "shop.test", Issue("shop.test"));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (store.Current.Select("shop.test") is null || store.Current.Select("web.test")!.Leaf.SerialNumber == first)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), "the store did not pick up the new files within 5 s");
            Thread.Sleep(20);
        }
    }

    private void AssertRefused(HostCertificates previous, string serial, string reason)
    {
        var (certificates, changes) = Scan(previous);
        var refused = Assert.Single(changes);
        Assert.Equal(CertificateChangeKind.Refused, refused.Kind);
        Assert.Equal(Path.Combine(_dir, "web.test.crt"), refused.File);
        Assert.Contains(reason, refused.Detail, StringComparison.Ordinal);
        Assert.Contains("still serving the previous one", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(serial, certificates.Select("web.test")!.Leaf.SerialNumber);
    }
}
