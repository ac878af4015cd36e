using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Security;

/// <summary>
/// The real <c>mesh</c> binary refuses to start, before listening anywhere, when a credential is missing, unreadable or
/// wrong, or when a TCP API would be open to anyone; the message names the option to fix and the exit code is 2 (usage).
/// </summary>
public sealed class StartupRefusalTests : IDisposable
{
    private readonly Credentials _files = new();

    public void Dispose() => _files.Dispose();

    private static readonly string[] Daemon = ["daemon", "--node", "mesh-n1", "--advertise-addr", "127.0.0.1", "--api", "unix:///run/mesh/test-refusal-never-created.sock"];

    private static async Task AssertRefusedAsync(string[] args, params string[] expected)
    {
        var result = await Shell.MeshAsync(args);
        Assert.True(result.ExitCode == 2, $"exit {result.ExitCode}, stderr: {result.Stderr}, stdout: {result.Stdout}");
        foreach (var text in expected)
        {
            Assert.Contains(text, result.Stderr, StringComparison.Ordinal);
        }
    }

    private string[] Tls(string cert, string key, string ca) => ["--tls-cert", cert, "--tls-key", key, "--tls-ca", ca];

    [Fact]
    public Task A_tcp_api_without_tls_or_token_is_refused_unless_insecure_is_explicit() =>
        AssertRefusedAsync([.. Daemon, "--api", "tcp://127.0.0.1:1"], "--api tcp://127.0.0.1:1", "--tls-cert", "--api-token-file", "--insecure-api");

    [Fact]
    public async Task Missing_or_unreadable_tls_files_are_named()
    {
        var missing = Path.Combine(_files.Directory, "missing.pem");
        var (cert, key, ca) = (_files.Cert("mesh-n1"), _files.Key("mesh-n1"), _files.Ca);
        await AssertRefusedAsync([.. Daemon, .. Tls(missing, key, ca)], "--tls-cert", missing, "no such file");
        await AssertRefusedAsync([.. Daemon, .. Tls(cert, missing, ca)], "--tls-key", missing, "no such file");
        await AssertRefusedAsync([.. Daemon, .. Tls(cert, key, missing)], "--tls-ca", missing, "no such file");
        await AssertRefusedAsync([.. Daemon, .. Tls(cert, key, _files.Directory)], "--tls-ca", "is a directory");
        await AssertRefusedAsync([.. Daemon, .. Tls(cert, key, key)], "--tls-ca", "holds no PEM certificate");
        await AssertRefusedAsync([.. Daemon, "--tls-cert", cert, "--tls-ca", ca], "--tls-cert, --tls-key and --tls-ca go together");

        // A key other users can read is refused; so is a key that is not the certificate's, and a certificate of another CA.
        var open = Path.Combine(_files.Directory, "open.key");
        File.Copy(key, open);
        File.SetUnixFileMode(open, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        await AssertRefusedAsync([.. Daemon, .. Tls(cert, open, ca)], "--tls-key", "chmod 600");
        await AssertRefusedAsync([.. Daemon, .. Tls(cert, _files.Key("mesh-n2"), ca)], "--tls-key", "is not the PEM private key of --tls-cert");
        await AssertRefusedAsync([.. Daemon, .. Tls(_files.OtherCert, _files.OtherKey, ca)], "--tls-cert", "cannot be used with --tls-ca");
    }

    [Fact]
    public async Task Token_file_problems_are_named()
    {
        var missing = Path.Combine(_files.Directory, "no-token");
        await AssertRefusedAsync([.. Daemon, "--api", "tcp://127.0.0.1:1", "--api-token-file", missing], "--api-token-file", "no such file");
        var weak = Path.Combine(_files.Directory, "weak-token");
        await File.WriteAllTextAsync(weak, "secret\n");
        File.SetUnixFileMode(weak, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await AssertRefusedAsync([.. Daemon, "--api", "tcp://127.0.0.1:1", "--api-token-file", weak], "--api-token-file", "at least 32");
        File.SetUnixFileMode(_files.TokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        await AssertRefusedAsync([.. Daemon, "--api", "tcp://127.0.0.1:1", "--api-token-file", _files.TokenFile], "--api-token-file", "chmod 600");
    }

    [Fact]
    public async Task Join_and_etcd_options_are_checked_too()
    {
        var (cert, key, ca) = (_files.Cert("mesh-n2"), _files.Key("mesh-n2"), _files.Ca);
        await AssertRefusedAsync([.. Daemon, "--join", "http://127.0.0.1:2377", .. Tls(cert, key, ca)], "--join", "https://");
        await AssertRefusedAsync([.. Daemon, "--join", "https://127.0.0.1:2377"], "--join", "--tls-cert");
        var missing = Path.Combine(_files.Directory, "etcd-ca.pem");
        await AssertRefusedAsync([.. Daemon, "--store", "etcd://127.0.0.1:1", "--etcd-ca", missing], "--etcd-ca", missing);
        await AssertRefusedAsync([.. Daemon, "--store", "etcd://127.0.0.1:1", "--etcd-cert", cert, "--etcd-ca", ca], "--etcd-cert and --etcd-key go together");
        await AssertRefusedAsync([.. Daemon, "--etcd-ca", ca], "--store etcd");
        await AssertRefusedAsync([.. Daemon, "--api-group", "no-such-group-here"], "--api-group 'no-such-group-here'", "no such group");
    }

    [Fact]
    public async Task Cli_clients_name_their_options_too()
    {
        var missing = Path.Combine(_files.Directory, "missing-ca.pem");
        await AssertRefusedAsync(["service", "ls", "--api", "https://127.0.0.1:1", "--tls-ca", missing], "--tls-ca", "no such file");
        await AssertRefusedAsync(["service", "ls", "--api", "https://127.0.0.1:1"], "https needs --tls-ca");
        await AssertRefusedAsync(["service", "ls", "--api", "http://127.0.0.1:1", "--api-token-file", Path.Combine(_files.Directory, "nope")], "--api-token-file");
    }
}
