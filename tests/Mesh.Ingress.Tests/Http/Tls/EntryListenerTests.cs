using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Mesh.Discovery.Security;
using Mesh.Ingress.Http;
using Mesh.Ingress.Http.Tls;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Http.Tls;

/// <summary>
/// The entry's real listeners (<see cref="HttpEntry.Listen"/>) on loopback, with curl as the client: HTTP/1.1 and h2c
/// on the HTTP port, TLS by SNI with HTTP/2 by ALPN on the HTTPS port, a replaced certificate served to the next
/// handshake while a connection opened before it keeps working.
/// </summary>
public sealed class EntryListenerTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-certs-").FullName;
    private readonly CertificateAuthority _ca = CertificateAuthority.Create("test CA", TimeSpan.FromDays(2));
    private readonly int _http = FreePort();
    private readonly int _https = FreePort();
    private CertificateStore? _store;
    private WebApplication? _app;
    private string CaFile => Path.Combine(_dir, "ca.pem");

    public async Task InitializeAsync()
    {
        File.WriteAllText(CaFile, _ca.Certificate.ExportCertificatePem()); // not a .crt: the store ignores it
        CertificateDirectoryTests.WritePair(_dir, "web.test", _ca.Issue("web.test", [], [], TimeSpan.FromDays(1)));
        _store = new CertificateStore(_dir, NullLogger<CertificateStore>.Instance, settle: TimeSpan.FromMilliseconds(50));
        _store.Start();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => HttpEntry.Listen(k, new HttpEntryOptions { Port = _http, HttpsPort = _https, CertsDirectory = _dir }, _store));
        _app = builder.Build();
        _app.Run(ctx => ctx.Response.WriteAsync($"{ctx.Request.Protocol} {ctx.Request.Scheme} {ctx.Connection.Id}\n"));
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _store?.Dispose();
        _ca.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<CommandResult> CurlAsync(params string[] args) =>
        Shell.RunAsync("curl", ["-s", "-m", "5", "--resolve", $"web.test:{_https}:127.0.0.1", "--resolve", $"other.test:{_https}:127.0.0.1", "--cacert", CaFile, .. args]);

    [Fact]
    public async Task The_http_port_speaks_http_1_1_and_h2c_with_prior_knowledge()
    {
        var one = await CurlAsync($"http://127.0.0.1:{_http}/");
        var two = await CurlAsync("--http2-prior-knowledge", $"http://127.0.0.1:{_http}/");
        var post = await CurlAsync("--http2-prior-knowledge", "-d", "x=1", $"http://127.0.0.1:{_http}/");

        // .NET's client too, several requests on one h2c connection (the same Kestrel connection id).
        using var client = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var answers = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            answers.Add(await client.GetStringAsync(new Uri($"http://127.0.0.1:{_http}/")));
        }

        Assert.StartsWith("HTTP/1.1 http ", one.Stdout, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/2 http ", two.Stdout, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/2 http ", post.Stdout, StringComparison.Ordinal);
        Assert.Single(answers.Distinct());
        Assert.StartsWith("HTTP/2 http ", answers[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_https_port_serves_the_sni_hosts_certificate_with_h2_and_http_1_1_by_alpn_and_fails_other_names()
    {
        var two = await CurlAsync("--http2", $"https://web.test:{_https}/");
        var one = await CurlAsync("--http1.1", $"https://web.test:{_https}/");
        var other = await CurlAsync($"https://other.test:{_https}/");

        Assert.StartsWith("HTTP/2 https ", two.Stdout, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 https ", one.Stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, other.ExitCode); // no certificate for other.test: the handshake fails
        Assert.Equal("", other.Stdout);
    }

    [Fact]
    public async Task A_replaced_certificate_is_served_to_new_handshakes_and_an_open_connection_keeps_working()
    {
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(IPAddress.Loopback, _https, ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
            },
        };
        using var client = new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version20 };
        var url = new Uri($"https://web.test:{_https}/");
        var before = await client.GetStringAsync(url);
        var oldSerial = await SerialAsync();
        var scans = _store!.Scans;

        CertificateDirectoryTests.WritePair(_dir, "web.test", _ca.Issue("web.test", [], [], TimeSpan.FromDays(1)));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string newSerial;
        while ((newSerial = await SerialAsync()) == oldSerial)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"still serial {oldSerial} after 5 s ({_store.Scans - scans} scans)");
            await Task.Delay(50);
        }

        // The same HTTP/2 connection (Kestrel's connection id) answers after the swap.
        var after = await client.GetStringAsync(url);
        Assert.Equal(before, after);
        Assert.StartsWith("HTTP/2 https ", after, StringComparison.Ordinal);
        Assert.NotEqual(oldSerial, newSerial);
    }

    /// <summary>The serial of the certificate a new handshake for web.test gets.</summary>
    private async Task<string> SerialAsync()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _https);
        await using var tls = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "web.test" });
        return new X509Certificate2(tls.RemoteCertificate!).SerialNumber;
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
