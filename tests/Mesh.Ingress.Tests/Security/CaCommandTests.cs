using Mesh.Discovery.Security;
using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Security;

/// <summary><c>mesh ca init</c> and <c>mesh ca issue</c> as an operator runs them, checked with the daemon's own loader.</summary>
public sealed class CaCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-ca-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Init_then_issue_gives_files_the_daemon_accepts_and_init_never_overwrites()
    {
        var ca = Path.Combine(_dir, "ca");
        var init = await Shell.MeshAsync("ca", "init", "--dir", ca);
        Assert.True(init.ExitCode == 0, init.Stderr);
        var issue = await Shell.MeshAsync("ca", "issue", "--dir", ca, "--node", "host-a", "--ip", "192.0.2.11");
        Assert.True(issue.ExitCode == 0, issue.Stderr);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(ca, "host-a.key")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(ca, "ca.key")));

        var security = Mesh.Ingress.Security.ApiSecurity.Load(new Mesh.Ingress.Security.ApiSecurityFiles
        {
            TlsCert = Path.Combine(ca, "host-a.crt"),
            TlsKey = Path.Combine(ca, "host-a.key"),
            TlsCa = Path.Combine(ca, "ca.crt"),
        }, hasTcpApi: true);
        Assert.True(security.UsesTls);

        var caKey = await File.ReadAllTextAsync(CertificateAuthority.KeyPath(ca));
        var again = await Shell.MeshAsync("ca", "init", "--dir", ca);
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("already exists", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(caKey, await File.ReadAllTextAsync(CertificateAuthority.KeyPath(ca)));

        var badIp = await Shell.MeshAsync("ca", "issue", "--dir", ca, "--node", "host-b", "--ip", "not-an-ip");
        Assert.Equal(2, badIp.ExitCode);
        Assert.Contains("--ip 'not-an-ip'", badIp.Stderr, StringComparison.Ordinal);
        var noCa = await Shell.MeshAsync("ca", "issue", "--dir", Path.Combine(_dir, "none"), "--node", "host-b");
        Assert.Equal(2, noCa.ExitCode);
        Assert.Contains("--dir", noCa.Stderr, StringComparison.Ordinal);
    }
}
