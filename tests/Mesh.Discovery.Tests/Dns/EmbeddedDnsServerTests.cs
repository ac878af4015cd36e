using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Mesh.Discovery.Dns;
using Xunit.Abstractions;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>The server on loopback, with the real dig as client and dnsmasq as the upstream.</summary>
public partial class EmbeddedDnsServerTests(ITestOutputHelper output)
{
    private static (Socket Udp, Socket Tcp) LoopbackSockets()
    {
        var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)udp.LocalEndPoint!).Port;
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, port)); // same port number for dig's +tcp retry
        }
        catch (SocketException)
        {
            udp.Dispose();
            tcp.Dispose();
            return LoopbackSockets();
        }
        return (udp, tcp);
    }

    private static EmbeddedDnsServer StartServer(IDnsAuthority authority, IReadOnlyList<IPEndPoint>? upstreams = null,
        TimeSpan? tryTimeout = null, TimeSpan? totalTimeout = null, TimeSpan? idle = null)
    {
        var (udp, tcp) = LoopbackSockets();
        var server = new EmbeddedDnsServer(new EmbeddedDnsServerOptions
        {
            TaskId = "web.1",
            State = "state-object",
            UdpSocket = udp,
            TcpListener = tcp,
            Upstreams = upstreams ?? [],
            UpstreamTryTimeout = tryTimeout ?? TimeSpan.FromSeconds(2),
            UpstreamTotalTimeout = totalTimeout ?? TimeSpan.FromSeconds(4),
            TcpIdleTimeout = idle ?? TimeSpan.FromSeconds(10),
        }, authority);
        server.Start();
        return server;
    }

    private static string Status(string digOutput) => StatusRegex().Match(digOutput).Groups[1].Value;
    private static string Flags(string digOutput) => FlagsRegex().Match(digOutput).Groups[1].Value;
    private static int AnswerCount(string digOutput) => int.Parse(AnswerRegex().Match(digOutput).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"status: (\w+)")] private static partial Regex StatusRegex();
    [GeneratedRegex(@"flags: ([a-z ]+);")] private static partial Regex FlagsRegex();
    [GeneratedRegex(@"ANSWER: (\d+)")] private static partial Regex AnswerRegex();

    [RequiresToolsFact("dig")]
    public async Task Dig_over_udp_and_tcp_gets_authoritative_answers()
    {
        var authority = new FakeAuthority();
        await using var server = StartServer(authority);
        int port = server.UdpEndPoint!.Port;
        foreach (var transport in new[] { "+notcp", "+tcp" })
        {
            var r = await DigAsync(port, transport, "web.mesh", "A");
            Assert.Equal("NOERROR", Status(r.Stdout));
            Assert.Contains("aa", Flags(r.Stdout).Split(' '));
            Assert.Contains("web.mesh.\t\t0\tIN\tA\t10.0.1.2", r.Stdout);
            Assert.Contains("web.mesh.\t\t0\tIN\tA\t10.0.1.3", r.Stdout);
        }
        Assert.Equal(new DnsClientContext("web.1", "state-object", DnsTransport.Tcp), authority.LastContext);

        var nx = await DigAsync(port, "nope.mesh");
        Assert.Equal("NXDOMAIN", Status(nx.Stdout));
        Assert.Contains("SOA", nx.Stdout);

        var nodata = await DigAsync(port, "v4only.mesh", "AAAA");
        Assert.Equal("NOERROR", Status(nodata.Stdout));
        Assert.Equal(0, AnswerCount(nodata.Stdout));

        var srv = await DigAsync(port, "_http._tcp.web.mesh", "SRV");
        Assert.Contains("0 0 80 web.1.mesh.", srv.Stdout);
        Assert.Contains("web.1.mesh.\t\t0\tIN\tA\t10.0.1.4", srv.Stdout); // additional section

        var boom = await DigAsync(port, "boom.mesh");
        Assert.Equal("SERVFAIL", Status(boom.Stdout));

        var mixed = await DigAsync(port, "WeB.MeSh");
        Assert.Contains("WeB.MeSh.\t\t0\tIN\tA\t10.0.1.2", mixed.Stdout); // 0x20: case echoed

        var noUpstream = await DigAsync(port, "example.com");
        Assert.Equal("SERVFAIL", Status(noUpstream.Stdout));
    }

    [RequiresToolsFact("dig")]
    public async Task Large_answer_sets_tc_over_udp_and_comes_whole_over_tcp()
    {
        await using var server = StartServer(new FakeAuthority());
        int port = server.UdpEndPoint!.Port;
        var udpOnly = await DigAsync(port, "+ignore", "+bufsize=1232", "big.mesh");
        Assert.Contains("tc", Flags(udpOnly.Stdout).Split(' '));
        Assert.InRange(AnswerCount(udpOnly.Stdout), 1, 199);

        var noEdns = await DigAsync(port, "+ignore", "+noedns", "big.mesh");
        Assert.Contains("tc", Flags(noEdns.Stdout).Split(' '));
        Assert.InRange(AnswerCount(noEdns.Stdout), 1, 40); // 512 bytes

        var retried = await DigAsync(port, "big.mesh"); // dig retries over TCP by itself on TC
        Assert.Equal(200, AnswerCount(retried.Stdout));
        Assert.DoesNotContain("tc", Flags(retried.Stdout).Split(' '));
    }

    [RequiresToolsFact("dig", "dnsmasq")]
    public async Task Names_not_owned_are_forwarded_to_the_upstream()
    {
        using var upstream = await DnsTestTools.Dnsmasq.StartAsync("--address=/example.test/192.0.2.1",
            "--txt-record=txt.example.test,hello");
        await using var server = StartServer(new FakeAuthority(), [upstream.EndPoint]);
        int port = server.UdpEndPoint!.Port;
        foreach (var transport in new[] { "+notcp", "+tcp" })
        {
            var r = await DigAsync(port, transport, "www.example.test");
            output.WriteLine(r.Stdout);
            Assert.Equal("NOERROR", Status(r.Stdout));
            Assert.Contains("192.0.2.1", r.Stdout);
        }
        var txt = await DigAsync(port, "txt.example.test", "TXT");
        Assert.Contains("\"hello\"", txt.Stdout);
        // Our own names still come from the authority.
        Assert.Contains("10.0.1.2", (await DigAsync(port, "web.mesh")).Stdout);
    }

    [RequiresToolsFact("dig", "dnsmasq")]
    public async Task Forwarded_answer_too_big_for_udp_is_truncated_and_whole_over_tcp()
    {
        var records = Enumerable.Range(1, 60).Select(i => $"--host-record=many.example.test,192.0.2.{i}").ToArray();
        using var upstream = await DnsTestTools.Dnsmasq.StartAsync(records);
        await using var server = StartServer(new FakeAuthority(), [upstream.EndPoint]);
        int port = server.UdpEndPoint!.Port;
        var truncated = await DigAsync(port, "+ignore", "+noedns", "many.example.test");
        Assert.Contains("tc", Flags(truncated.Stdout).Split(' '));
        var whole = await DigAsync(port, "+noedns", "many.example.test"); // TC → dig retries over TCP
        output.WriteLine(whole.Stdout);
        Assert.Equal(60, AnswerCount(whole.Stdout));
        var big = await DigAsync(port, "+bufsize=4096", "many.example.test"); // fits the client's EDNS size: UDP
        Assert.Equal(60, AnswerCount(big.Stdout));
        Assert.DoesNotContain("tc", Flags(big.Stdout).Split(' '));
    }

    [RequiresToolsFact("dig", "dnsmasq")]
    public async Task Forwarded_udp_replies_respect_the_clients_size_and_dig_gets_the_whole_answer_over_tcp()
    {
        // ≈11 KB of A records: over any UDP size we send (dnsmasq itself sets TC at 4096; we then fetch it over TCP).
        const int Count = 700;
        var records = Enumerable.Range(0, Count).Select(i => $"--host-record=wide.example.test,10.9.{i / 250}.{i % 250 + 1}").ToArray();
        using var upstream = await DnsTestTools.Dnsmasq.StartAsync(records);
        await using var server = StartServer(new FakeAuthority(), [upstream.EndPoint]);
        int port = server.UdpEndPoint!.Port;

        // Our own client socket: the datagram as sent, byte for byte.
        foreach (var (advertised, limit) in new (int?, int)[] { (null, 512), (1232, 1232), (65535, 4096) })
        {
            var q = new DnsMessage { Id = 0x5151, RecursionDesired = true, Edns = advertised is { } a ? new DnsEdns { UdpPayloadSize = (ushort)a } : null };
            q.Questions.Add(new DnsQuestion(DnsName.Parse("wide.example.test"), DnsType.A));
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            client.Connect(server.UdpEndPoint!);
            await client.SendAsync(q.ToArray());
            var buf = new byte[65535];
            int n = await client.ReceiveAsync(buf.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            output.WriteLine($"advertised {advertised?.ToString() ?? "none"}: {n} bytes");
            Assert.InRange(n, 12, limit);
            var reply = DnsMessage.Parse(buf.AsSpan(0, n));
            Assert.True(reply.IsTruncated);
            Assert.Equal(0x5151, reply.Id);
            Assert.Equal(DnsResponseCode.NoError, reply.ResponseCode);
        }

        // dig, told not to retry: the UDP reply's size and TC.
        foreach (var (option, limit) in new[] { ("+noedns", 512), ("+bufsize=1232", 1232), ("+bufsize=65535", 4096) })
        {
            var udp = await DigAsync(port, "+ignore", option, "wide.example.test");
            output.WriteLine(udp.Stdout);
            Assert.Equal("NOERROR", Status(udp.Stdout));
            Assert.Contains("tc", Flags(udp.Stdout).Split(' '));
            Assert.InRange(MessageSize(udp.Stdout), 12, limit);
        }

        // dig as it is normally used: TC makes it retry over TCP, where the whole answer comes through.
        foreach (var option in new[] { "+noedns", "+bufsize=1232" })
        {
            var whole = await DigAsync(port, option, "wide.example.test");
            Assert.Equal("NOERROR", Status(whole.Stdout));
            Assert.Contains("Truncated, retrying in TCP mode", whole.Stdout + whole.Stderr);
            Assert.Equal(Count, AnswerCount(whole.Stdout));
            Assert.InRange(MessageSize(whole.Stdout), 10_000, 65535);
        }
    }

    private static int MessageSize(string digOutput) => int.Parse(MsgSizeRegex().Match(digOutput).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"MSG SIZE\s+rcvd: (\d+)")] private static partial Regex MsgSizeRegex();

    [RequiresToolsFact("dig")]
    public async Task Upstream_down_gives_servfail_within_the_total_timeout()
    {
        // One upstream that never answers (a bound socket nobody reads), one port with nothing bound (ECONNREFUSED).
        using var blackhole = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        blackhole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var refused = new IPEndPoint(IPAddress.Loopback, DnsTestTools.FreePort());
        await using var server = StartServer(new FakeAuthority(), [(IPEndPoint)blackhole.LocalEndPoint!, refused],
            tryTimeout: TimeSpan.FromMilliseconds(500), totalTimeout: TimeSpan.FromSeconds(1.5));
        int port = server.UdpEndPoint!.Port;
        var sw = Stopwatch.StartNew();
        var r = await DigAsync(port, "down.example.com");
        Assert.Equal("SERVFAIL", Status(r.Stdout));
        Assert.InRange(sw.Elapsed.TotalSeconds, 0.3, 3.0);

        await using var server2 = StartServer(new FakeAuthority(), [refused], tryTimeout: TimeSpan.FromSeconds(2));
        sw.Restart();
        var r2 = await DigAsync(server2.UdpEndPoint!.Port, "down.example.com");
        Assert.Equal("SERVFAIL", Status(r2.Stdout));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1.5), "ECONNREFUSED fails fast: " + sw.Elapsed);
    }

    [Fact]
    public async Task Tcp_connection_carries_several_queries_and_is_closed_when_idle()
    {
        await using var server = StartServer(new FakeAuthority(), idle: TimeSpan.FromMilliseconds(400));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(server.TcpEndPoint!);
        foreach (var (id, name) in new[] { ((ushort)1, "web.mesh"), ((ushort)2, "tasks.web.mesh"), ((ushort)3, "big.mesh") })
        {
            var q = new DnsMessage { Id = id, RecursionDesired = true };
            q.Questions.Add(new DnsQuestion(DnsName.Parse(name), DnsType.A));
            var wire = q.ToArray();
            var framed = new byte[wire.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)wire.Length);
            wire.CopyTo(framed, 2);
            await client.SendAsync(framed);
            var reply = await ReadFramedAsync(client);
            Assert.Equal(id, reply.Id);
            Assert.False(reply.IsTruncated);
            Assert.NotEmpty(reply.Answers);
        }
        var sw = Stopwatch.StartNew();
        var buf = new byte[2];
        int n = await client.ReceiveAsync(buf.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, n); // server closed the idle connection
        Assert.InRange(sw.Elapsed.TotalMilliseconds, 200, 3000);
    }

    [Fact]
    public async Task Responses_and_garbage_over_udp_are_dropped_and_malformed_queries_get_formerr()
    {
        await using var server = StartServer(new FakeAuthority());
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Connect(server.UdpEndPoint!);
        await client.SendAsync(new byte[] { 1, 2, 3 });                                           // no header: dropped
        await client.SendAsync(Convert.FromHexString(DnsCodecGoldenTests.DnsmasqAnswerA));        // a response: dropped
        await client.SendAsync(Convert.FromHexString("beef01000001000000000000c00c00010001"));  // looping pointer: FORMERR
        var buf = new byte[512];
        int n = await client.ReceiveAsync(buf.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        var reply = DnsMessage.Parse(buf.AsSpan(0, n));
        Assert.Equal(0xbeef, reply.Id);
        Assert.Equal(DnsResponseCode.FormErr, reply.ResponseCode);
    }

    private static async Task<DnsMessage> ReadFramedAsync(Socket s)
    {
        var len = new byte[2];
        await ReceiveExactly(s, len);
        var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(len)];
        await ReceiveExactly(s, body);
        return DnsMessage.Parse(body);
    }

    private static async Task ReceiveExactly(Socket s, byte[] buf)
    {
        int got = 0;
        while (got < buf.Length)
        {
            int n = await s.ReceiveAsync(buf.AsMemory(got)).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            if (n == 0) throw new IOException("closed");
            got += n;
        }
    }

    private static Task<DnsTestTools.Result> DigAsync(int port, params string[] args) => DnsTestTools.DigAsync(port, args);
}
