using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;
using Microsoft.Extensions.Logging;

namespace Mesh.Discovery.Tests.Dns;

public class DnsUpstreamGuardTests
{
    private static IPEndPoint Ep(string text) => IPEndPoint.Parse(text);

    [Fact]
    public void The_embedded_resolver_its_sockets_and_the_tasks_own_addresses_are_self()
    {
        IPEndPoint?[] listening = [Ep("127.0.0.1:5353"), null];
        IPAddress[] own = [IPAddress.Parse("10.0.1.4")];
        Assert.NotNull(DnsUpstreamGuard.WhySelf(Ep("127.0.0.11:53"), own, listening));
        Assert.NotNull(DnsUpstreamGuard.WhySelf(Ep("127.0.0.11:5300"), own, listening));      // any port: DNAT sends :53 to ours
        Assert.NotNull(DnsUpstreamGuard.WhySelf(Ep("[::ffff:127.0.0.11]:53"), own, listening));
        Assert.NotNull(DnsUpstreamGuard.WhySelf(Ep("10.0.1.4:53"), own, listening));
        Assert.NotNull(DnsUpstreamGuard.WhySelf(Ep("127.0.0.1:5353"), own, listening));
        Assert.NotNull(DnsUpstreamGuard.WhySelf(Ep("127.0.0.2:5353"), own, [Ep("0.0.0.0:5353")]));

        Assert.Null(DnsUpstreamGuard.WhySelf(Ep("127.0.0.53:53"), own, listening));            // systemd-resolved on the node
        Assert.Null(DnsUpstreamGuard.WhySelf(Ep("127.0.0.1:5354"), own, listening));
        Assert.Null(DnsUpstreamGuard.WhySelf(Ep("198.18.0.53:53"), own, listening));
    }

    [Fact]
    public void A_configured_upstream_at_127_0_0_11_is_refused_naming_the_option()
    {
        var e = Assert.Throws<ArgumentException>(() => DnsUpstreamGuard.EnsureNotSelf([Ep("198.18.0.53:53"), Ep("127.0.0.11:53")], "--dns-upstream"));
        Assert.Contains("--dns-upstream", e.Message);
        Assert.Contains("127.0.0.11", e.Message);
        DnsUpstreamGuard.EnsureNotSelf([Ep("198.18.0.53:53"), Ep("127.0.0.53:53")], "--dns-upstream");
    }

    [Fact]
    public void Resolv_conf_nameserver_127_0_0_11_is_filtered_with_a_log_line()
    {
        var log = new RecordingLogger();
        var upstreams = ResolvConf.UpstreamsOf("nameserver 127.0.0.11\nnameserver 192.0.2.53\n", log, "/etc/resolv.conf");
        Assert.Equal([Ep("192.0.2.53:53")], upstreams);
        var line = Assert.Single(log.Lines);
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Contains("127.0.0.11", line.Message);
        Assert.Contains("/etc/resolv.conf", line.Message);
    }

    [Fact]
    public async Task A_server_given_itself_as_upstream_drops_it_and_never_forwards_a_query_back_to_itself()
    {
        var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var self = (IPEndPoint)udp.LocalEndPoint!;
        var log = new RecordingLogger();
        var authority = new FakeAuthority();
        await using var server = new EmbeddedDnsServer(new EmbeddedDnsServerOptions
        {
            TaskId = "web.1",
            UdpSocket = udp,
            Upstreams = [self, Ep("127.0.0.11:53"), Ep("10.0.1.4:53")],
            OwnAddresses = [IPAddress.Parse("10.0.1.4")],
            UpstreamTryTimeout = TimeSpan.FromSeconds(1),
            UpstreamTotalTimeout = TimeSpan.FromSeconds(2),
        }, authority, log, null, null);
        Assert.Empty(server.Upstreams);
        Assert.Equal(3, log.Lines.Count(l => l.Level == LogLevel.Warning && l.Message.Contains("would loop", StringComparison.Ordinal)));
        server.Start();

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Connect(self);
        var q = new DnsMessage { Id = 9, RecursionDesired = true };
        q.Questions.Add(new DnsQuestion(DnsName.Parse("example.org"), DnsType.A));
        await client.SendAsync(q.ToArray());
        var buf = new byte[512];
        int n = await client.ReceiveAsync(buf.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(DnsResponseCode.ServFail, DnsMessage.Parse(buf.AsSpan(0, n)).ResponseCode);
        await Task.Delay(200);
        Assert.Equal(1, authority.Calls); // a loop would have brought the query back to the authority again and again
    }
}
