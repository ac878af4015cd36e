using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Proxy;
using Mesh.Ingress.Tests.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Mesh.Ingress.Tests.Proxy;

/// <summary>
/// The relays on real sockets, in the test's own namespace (entered the way the daemon enters the sandbox's):
/// the backend reads the header then the client's bytes, a half-close travels both ways, a datagram arrives with
/// the header in front and its answer comes back bare, and a connection with no backend is reset.
/// </summary>
public sealed class RelayTests
{
    private static readonly IPAddress Node = IPAddress.Parse("198.18.0.13");

    private static int FreePort(SocketType type, ProtocolType protocol)
    {
        using var s = new Socket(AddressFamily.InterNetwork, type, protocol);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    [Fact]
    public async Task Tcp_sends_the_header_then_the_clients_bytes_and_passes_half_closes_on()
    {
        using var backend = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        backend.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        backend.Listen();
        var published = FreePort(SocketType.Stream, ProtocolType.Tcp);
        using var meters = new TestMeterFactory();
        using var sockets = new SandboxSockets("/proc/self/ns/net");
        var port = new RelayPort(TransportProtocol.Tcp, published, "pweb", 80, [(IPEndPoint)backend.LocalEndPoint!]);
        await using var relay = TcpRelay.Open(port, sockets, Node, new ProxyRelayMetrics(meters), NullLogger.Instance);

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, published);
        await client.SendAsync("hello"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);

        using var accepted = await backend.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var received = await ReadToEndAsync(accepted);
        Assert.Equal(ProxyParse.Complete, ProxyHeaderV2.TryRead(received, out var header, out var consumed));
        Assert.Equal(ProxyTransport.Stream, header!.Transport);
        Assert.Equal(client.LocalEndPoint, header.Source);
        Assert.Equal(new IPEndPoint(Node, published), header.Destination);
        Assert.Equal("hello", Encoding.ASCII.GetString(received.AsSpan(consumed)));

        // The backend still answers after the client's half-close, then closes: the client reads it all, then EOF.
        await accepted.SendAsync("world"u8.ToArray());
        accepted.Shutdown(SocketShutdown.Send);
        Assert.Equal("world", Encoding.ASCII.GetString(await ReadToEndAsync(client)));
        await WaitUntilAsync(() => relay.OpenConnections == 0);
    }

    [Fact]
    public async Task Tcp_without_a_backend_resets_the_client_and_a_new_backend_list_applies_to_new_connections()
    {
        var published = FreePort(SocketType.Stream, ProtocolType.Tcp);
        using var meters = new TestMeterFactory();
        using var sockets = new SandboxSockets("/proc/self/ns/net");
        await using var relay = TcpRelay.Open(new RelayPort(TransportProtocol.Tcp, published, "pweb", 80, []), sockets, Node, new ProxyRelayMetrics(meters), NullLogger.Instance);

        using (var refused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            // On loopback the reset can beat the end of connect(): either way the client sees a reset, not data or a timeout.
            var e = await Assert.ThrowsAsync<SocketException>(async () =>
            {
                await refused.ConnectAsync(IPAddress.Loopback, published);
                await refused.ReceiveAsync(new byte[16]).WaitAsync(TimeSpan.FromSeconds(10));
            });
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        }

        using var backend = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        backend.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        backend.Listen();
        relay.Update(relay.Port with { Backends = [(IPEndPoint)backend.LocalEndPoint!] });
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, published);
        using var accepted = await backend.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(ProxyParse.Complete, ProxyHeaderV2.TryRead(await ReadAsync(accepted, 28), out _, out _));
    }

    [Fact]
    public async Task Udp_prefixes_each_datagram_with_the_header_and_returns_the_answer_bare_from_the_published_port()
    {
        using var backend = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        backend.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var published = FreePort(SocketType.Dgram, ProtocolType.Udp);
        using var meters = new TestMeterFactory();
        using var sockets = new SandboxSockets("/proc/self/ns/net");
        await using var relay = UdpRelay.Open(new RelayPort(TransportProtocol.Udp, published, "pweb", 80, [(IPEndPoint)backend.LocalEndPoint!]), sockets, Node, new ProxyRelayMetrics(meters), NullLogger.Instance);

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Connect(IPAddress.Loopback, published);
        var buffer = new byte[2048];
        foreach (var text in new[] { "one", "two" })
        {
            await client.SendAsync(Encoding.ASCII.GetBytes(text));
            var from = new IPEndPoint(IPAddress.Any, 0);
            var got = await backend.ReceiveFromAsync(buffer, from).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(ProxyParse.Complete, ProxyHeaderV2.TryRead(buffer.AsSpan(0, got.ReceivedBytes), out var header, out var consumed));
            Assert.Equal(ProxyTransport.Datagram, header!.Transport);
            Assert.Equal(client.LocalEndPoint, header.Source);
            Assert.Equal(new IPEndPoint(Node, published), header.Destination);
            Assert.Equal(text, Encoding.ASCII.GetString(buffer, consumed, got.ReceivedBytes - consumed));
            await backend.SendToAsync(Encoding.ASCII.GetBytes(text.ToUpperInvariant()), got.RemoteEndPoint);
            var n = await client.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(text.ToUpperInvariant(), Encoding.ASCII.GetString(buffer, 0, n));
        }

        Assert.Equal(1, relay.OpenFlows); // both datagrams were one flow
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
            if (n == 0)
            {
                return all.ToArray();
            }

            all.Write(buffer, 0, n);
        }
    }

    private static async Task<byte[]> ReadAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read)).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(n > 0, "closed early");
            read += n;
        }

        return buffer;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 100 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition());
    }
}
