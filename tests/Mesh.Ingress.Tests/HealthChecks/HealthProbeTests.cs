using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.HealthChecks;

namespace Mesh.Ingress.Tests.HealthChecks;

public sealed class HealthProbeTests
{
    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\n", 200)]
    [InlineData("HTTP/1.0 503 Service Unavailable\r\nx: y\r\n", 503)]
    [InlineData("HTTP/1.1 204\r\n", 204)]
    public void The_status_line_gives_the_code(string answer, int status) =>
        Assert.Equal(status, HealthProbe.ParseStatus(Encoding.ASCII.GetBytes(answer)));

    [Theory]
    [InlineData("")]
    [InlineData("SSH-2.0-OpenSSH\r\n")]
    [InlineData("HTTP/1.1 2000 OK\r\n")]
    [InlineData("HTTP/1.1 abc OK\r\n")]
    public void Anything_else_is_not_an_answer(string answer) =>
        Assert.Throws<FormatException>(() => HealthProbe.ParseStatus(Encoding.ASCII.GetBytes(answer)));

    /// <summary>Real sockets from this process's own namespace (entering it needs CAP_SYS_ADMIN, as the sandbox's does).</summary>
    [Fact]
    public async Task A_real_server_is_healthy_on_2xx_and_unhealthy_on_5xx_silence_or_refusal()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Fail("needs root: a probe enters a network namespace (setns)");
        }

        var probe = new HealthProbe("/proc/self/ns/net");
        // 1 s, not less: under a full run's load a 300 ms probe sometimes gave up before its request was out.
        var http = new HealthCheck { Path = "/healthz", IntervalMs = 2000, TimeoutMs = 1000 };
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        async Task<string?> AnswerWithAsync(string? answer)
        {
            var probing = probe.RunAsync(IPAddress.Loopback, port, http, CancellationToken.None);
            using var client = await listener.AcceptTcpClientAsync();
            var request = new byte[1024];
            var n = await client.GetStream().ReadAsync(request);
            Assert.StartsWith("GET /healthz HTTP/1.1\r\n", Encoding.ASCII.GetString(request, 0, n), StringComparison.Ordinal);
            if (answer is not null)
            {
                await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(answer));
            }

            return await probing;
        }

        Assert.Null(await AnswerWithAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        Assert.Equal("GET /healthz: 503", await AnswerWithAsync("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        Assert.Equal("no answer in 1000 ms", await AnswerWithAsync(null));
        Assert.Null(await probe.RunAsync(IPAddress.Loopback, port, new HealthCheck { Kind = HealthCheckKind.Tcp, IntervalMs = 1000, TimeoutMs = 300 }, CancellationToken.None));

        listener.Stop();
        Assert.Equal("ConnectionRefused", await probe.RunAsync(IPAddress.Loopback, port, http, CancellationToken.None));
    }
}
