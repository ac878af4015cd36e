using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Mesh.Discovery.Security;
using Mesh.Ingress.Lab;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// The L7 entry's HTTPS (issue 11 part 3): every node's daemon has <c>--certs-dir /run/mesh/lab/certs</c>; each test
/// puts a web.test certificate of the lab's CA there (as an operator would: written beside, renamed in), and takes
/// it away again at the end. Also h2c with prior knowledge on the HTTP port.
/// </summary>
public sealed partial class LabEndToEndTests
{
    private const int HttpsPort = 443;

    [LabFact]
    public async Task T8s_h2c_with_prior_knowledge_on_the_http_port_of_every_node_reaches_the_tasks_with_the_client_address()
    {
        foreach (var node in LabFixture.NodeAddresses)
        {
            var output = await Shell.CheckedAsync("ip", "netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "--http2-prior-knowledge",
                "-H", $"Host: {LabPlan.DemoHost}", "-w", "v=%{http_version}\n", $"http://{node}/");
            Assert.Matches(@"^web\.\d ", output);
            Assert.Contains($" xff={Client} ", output, StringComparison.Ordinal);
            Assert.EndsWith("v=2\n", output, StringComparison.Ordinal);
        }
    }

    [LabFact]
    public async Task T8s_https_through_every_node_serves_web_test_by_sni_over_http2_and_http1_to_every_task_with_the_client_address()
    {
        var serial = await PutCertificateAsync();
        try
        {
            foreach (var node in LabFixture.NodeAddresses)
            {
                // Six requests on one connection (YARP spreads requests, not connections), headers and body.
                var urls = Enumerable.Repeat($"https://{LabPlan.DemoHost}:{HttpsPort}/", 6).ToArray();
                var h2 = await CurlTlsAsync(node, ["--http2", "-i", .. urls]);
                var lines = h2.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
                var answers = lines.Where(l => l.StartsWith("web.", StringComparison.Ordinal)).ToList();
                Assert.Equal(6, lines.Count(l => l.StartsWith("HTTP/2 200", StringComparison.Ordinal)));
                Assert.Equal(6, lines.Count(l => l.Equals("x-lab-forwarded-proto: https", StringComparison.OrdinalIgnoreCase)));
                Assert.Equal(6, answers.Count);
                Assert.Equal(AllTasks, answers.Select(a => a.Split(' ')[0]).Distinct().Order());
                Assert.All(answers, a => Assert.Contains($" xff={Client} ", a, StringComparison.Ordinal));

                var h1 = await CurlTlsAsync(node, ["--http1.1", "-w", "v=%{http_version}\n", $"https://{LabPlan.DemoHost}:{HttpsPort}/"]);
                Assert.EndsWith("v=1.1\n", h1, StringComparison.Ordinal);
                Assert.Equal(serial, await ServedSerialAsync(node));
            }
        }
        finally
        {
            RemoveCertificate();
        }
    }

    [LabFact]
    public async Task T8s_a_replaced_certificate_is_served_by_every_node_within_seconds_and_a_connection_opened_before_keeps_working()
    {
        var old = await PutCertificateAsync();
        var connects = 0;
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                Interlocked.Increment(ref connects);
                var socket = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                await socket.ConnectAsync(IPAddress.Parse(LabFixture.NodeAddresses[2]), HttpsPort, ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null },
        };
        using var client = new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version20, Timeout = TimeSpan.FromSeconds(5) };
        var url = new Uri($"https://{LabPlan.DemoHost}:{HttpsPort}/");
        try
        {
            Assert.Matches(@"^web\.\d ", await client.GetStringAsync(url));
            var clock = Stopwatch.StartNew();
            var fresh = await PutCertificateAsync(waitForServing: false);
            foreach (var node in LabFixture.NodeAddresses)
            {
                while (await ServedSerialAsync(node) != fresh)
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{node} still serves serial {old} {clock.ElapsedMilliseconds} ms after the replacement");
                    await Task.Delay(50);
                }
            }

            // The connection opened before the swap answers on (no new connection was made).
            Assert.Matches(@"^web\.\d ", await client.GetStringAsync(url));
            Assert.Equal(1, connects);
        }
        finally
        {
            RemoveCertificate();
        }
    }

    private static Task<string> CurlTlsAsync(string node, string[] args) =>
        Shell.CheckedAsync("ip", ["netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "--cacert", LabPlan.CaCertificate,
            "--resolve", $"{LabPlan.DemoHost}:{HttpsPort}:{node}", .. args]);

    /// <summary>
    /// A fresh web.test certificate of the lab's CA in every node's certs directory, each file written beside under a
    /// hidden name and renamed in (key first); its serial, once every node serves it (unless told not to wait).
    /// </summary>
    private static async Task<string> PutCertificateAsync(bool waitForServing = true)
    {
        using var ca = CertificateAuthority.Load(LabPlan.CaDirectory);
        var issued = ca.Issue(LabPlan.DemoHost, [], [], TimeSpan.FromDays(1));
        Replace(LabPlan.DemoHost + ".key", issued.KeyPem, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Replace(LabPlan.DemoHost + ".crt", issued.CertificatePem, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        using var certificate = X509Certificate2.CreateFromPem(issued.CertificatePem);
        var serial = certificate.SerialNumber;
        var clock = Stopwatch.StartNew();
        foreach (var node in waitForServing ? LabFixture.NodeAddresses : [])
        {
            while (await ServedSerialAsync(node) != serial)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{node} does not serve the new certificate after {clock.ElapsedMilliseconds} ms");
                await Task.Delay(50);
            }
        }

        return serial;
    }

    private static void Replace(string name, string content, UnixFileMode mode)
    {
        var temporary = Path.Combine(LabPlan.CertsDirectory, "." + name + ".tmp");
        File.WriteAllText(temporary, content);
        File.SetUnixFileMode(temporary, mode);
        File.Move(temporary, Path.Combine(LabPlan.CertsDirectory, name), overwrite: true);
    }

    private static void RemoveCertificate()
    {
        File.Delete(Path.Combine(LabPlan.CertsDirectory, LabPlan.DemoHost + ".crt"));
        File.Delete(Path.Combine(LabPlan.CertsDirectory, LabPlan.DemoHost + ".key"));
    }

    /// <summary>The serial of the certificate a new TLS handshake for web.test from mesh-client gets from a node ("" when it fails).</summary>
    private static async Task<string> ServedSerialAsync(string node)
    {
        try
        {
            using var socket = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            await socket.ConnectAsync(IPAddress.Parse(node), HttpsPort, timeout.Token);
            await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), false, (_, _, _, _) => true);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = LabPlan.DemoHost }, timeout.Token);
            using var served = new X509Certificate2(tls.RemoteCertificate!);
            return served.SerialNumber;
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException or OperationCanceledException)
        {
            return "";
        }
    }
}
