using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;
using Microsoft.Extensions.Logging;

namespace Mesh.Discovery.Tests.Dns;

public class UpstreamFailureLoggingTests
{
    /// <summary>A clock moved by hand.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Interlocked.Read(ref _ticks);
        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    private sealed class OwnMeters : IMeterFactory
    {
        public List<Meter> Meters { get; } = [];
        public Meter Create(MeterOptions options)
        {
            var m = new Meter(options);
            Meters.Add(m);
            return m;
        }
        public void Dispose() => Meters.ForEach(m => m.Dispose());
    }

    [Fact]
    public void One_line_per_key_per_interval_and_the_next_line_says_how_many_were_held_back()
    {
        var time = new ManualTime();
        var limiter = new LogRateLimiter(TimeSpan.FromSeconds(10), time);
        Assert.True(limiter.ShouldLog("a", out long s0));
        Assert.Equal(0, s0);
        for (int i = 0; i < 499; i++) Assert.False(limiter.ShouldLog("a", out _));
        Assert.True(limiter.ShouldLog("b", out _)); // another upstream has its own budget

        time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.False(limiter.ShouldLog("a", out _));
        time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.True(limiter.ShouldLog("a", out long held));
        Assert.Equal(500, held);
        Assert.False(limiter.ShouldLog("a", out _));
    }

    [Fact]
    public void Keys_beyond_the_cap_share_one_window()
    {
        var limiter = new LogRateLimiter(TimeSpan.FromMinutes(1), new ManualTime());
        int logged = 0;
        for (int i = 0; i < LogRateLimiter.MaxKeys * 3; i++)
            if (limiter.ShouldLog("k" + i, out _)) logged++;
        Assert.InRange(logged, LogRateLimiter.MaxKeys, LogRateLimiter.MaxKeys + 1);
    }

    [Fact]
    public async Task A_thousand_failed_forwards_to_a_dead_upstream_log_a_few_lines_and_count_a_thousand()
    {
        // A real server on loopback, forwarding to a port where nothing listens (ECONNREFUSED: each query fails fast).
        var dead = new IPEndPoint(IPAddress.Loopback, DnsTestTools.FreePort());
        using var meters = new OwnMeters();
        var metrics = new DnsMetrics(meters);
        long failures = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (inst, l) =>
        {
            if (meters.Meters.Contains(inst.Meter) && inst.Name == "mesh.dns.upstream.failures") l.EnableMeasurementEvents(inst);
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref failures, value));
        listener.Start();

        var log = new RecordingLogger();
        var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = new EmbeddedDnsServer(new EmbeddedDnsServerOptions
        {
            TaskId = "web.1",
            UdpSocket = udp,
            Upstreams = [dead],
            UpstreamFailureLog = new LogRateLimiter(TimeSpan.FromSeconds(10)),
        }, new FakeAuthority(), log, metrics, null);
        server.Start();

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Connect(server.UdpEndPoint!);
        var buf = new byte[512];
        for (int i = 0; i < 1000; i++)
        {
            var q = new DnsMessage { Id = (ushort)i, RecursionDesired = true };
            q.Questions.Add(new DnsQuestion(DnsName.Parse($"q{i}.example.org"), DnsType.A));
            await client.SendAsync(q.ToArray());
            int n = await client.ReceiveAsync(buf.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(DnsResponseCode.ServFail, DnsMessage.Parse(buf.AsSpan(0, n)).ResponseCode);
        }

        Assert.Equal(1000, Interlocked.Read(ref failures));
        var warnings = log.Lines.Where(l => l.Level >= LogLevel.Warning).ToArray();
        Assert.InRange(warnings.Length, 1, 3); // one per 10 s; the loop takes seconds at most
        Assert.Contains(dead.ToString(), warnings[0].Message);
    }
}
