using System.Diagnostics;
using Mesh.Discovery.Dns;
using Xunit.Abstractions;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>
/// Feeds the server's request handler 100,000+ random and mutated packets (fixed seed) and checks that no
/// exception escapes and that every reply parses back, is a response to that query, and fits the size limit.
/// </summary>
public class DnsFuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20240611;
    private const int Iterations = 120_000;

    [Fact]
    public void Handler_survives_random_and_mutated_packets_and_every_reply_is_well_formed()
    {
        var handler = new DnsRequestHandler(new FakeAuthority(), new FakeForwarder(), DnsMetrics.Shared, null, maxUdpPayload: 4096);
        var rng = new Random(Seed);
        var corpus = BuildCorpus(rng);
        var response = new byte[DnsMessage.MaxMessageSize];
        var stats = new Dictionary<string, int>();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < Iterations; i++)
        {
            byte[] packet = (i % 10) switch
            {
                0 => RandomBytes(rng, rng.Next(0, 600)),
                1 => corpus[rng.Next(corpus.Count)],               // valid queries as they are
                _ => Mutate(rng, corpus[rng.Next(corpus.Count)]),
            };
            var transport = (i & 1) == 0 ? DnsTransport.Udp : DnsTransport.Tcp;
            int n;
            try
            {
                var vt = handler.HandleAsync(packet, response, new DnsClientContext("task-1", null, transport), CancellationToken.None);
                Assert.True(vt.IsCompleted, "fake forwarder completes synchronously");
                n = vt.Result;
            }
            catch (Exception e)
            {
                Assert.Fail($"packet #{i} {Convert.ToHexString(packet)} threw {e}");
                return;
            }
            string key = n == 0 ? "dropped" : DnsMetrics.RcodeName((DnsResponseCode)(response[3] & 0xF));
            stats[key] = stats.GetValueOrDefault(key) + 1;
            if (n > 0) CheckReply(i, packet, response.AsSpan(0, n), transport);
        }
        output.WriteLine($"{Iterations} packets in {sw.ElapsedMilliseconds} ms: " + string.Join(", ", stats.OrderBy(k => k.Key).Select(k => $"{k.Key}={k.Value}")));
        // The corpus and mutations must actually reach the interesting paths.
        Assert.True(stats.GetValueOrDefault("NOERROR") > 1000);
        Assert.True(stats.GetValueOrDefault("FORMERR") > 1000);
        Assert.True(stats.GetValueOrDefault("NXDOMAIN") > 100);
        Assert.True(stats.GetValueOrDefault("dropped") > 100);
    }

    private static void CheckReply(int i, byte[] request, ReadOnlySpan<byte> reply, DnsTransport transport)
    {
        string Where() => $"packet #{i} {Convert.ToHexString(request)}";
        Assert.True(DnsMessage.TryParse(reply, out var m), $"reply does not parse: {Where()} -> {Convert.ToHexString(reply)}");
        Assert.True(m!.IsResponse, Where());
        Assert.Equal(request[0] << 8 | request[1], m.Id);
        Assert.True(request.Length >= 12 && (request[2] & 0x80) == 0, "only queries get replies: " + Where());
        if (m.ResponseCode == DnsResponseCode.FormErr)
        {
            Assert.False(DnsMessage.TryParse(request, out var rq) && rq.Questions.Count == 1 && rq.OpCode == DnsOpCode.Query, "FORMERR for a valid query: " + Where());
            return;
        }
        Assert.True(DnsMessage.TryParse(request, out var q), "reply other than FORMERR to a malformed query: " + Where());
        Assert.Equal(q!.Questions, m.Questions);
        Assert.Equal(q.Edns is not null, m.Edns is not null);
        int limit = transport == DnsTransport.Tcp ? 65535 : q.Edns is null ? 512 : Math.Max(512, (int)q.Edns.UdpPayloadSize);
        Assert.True(reply.Length <= limit, $"reply of {reply.Length} over limit {limit}: " + Where());
        if (q.Edns is not null && q.Edns.Version != 0) Assert.Equal(1, m.Edns!.ExtendedRcode);
    }

    internal static List<byte[]> BuildCorpus(Random rng)
    {
        var corpus = new List<byte[]>
        {
            Convert.FromHexString(DnsCodecGoldenTests.DigQueryWithCookie),
            Convert.FromHexString(DnsCodecGoldenTests.DigQueryMixedCase),
            Convert.FromHexString(DnsCodecGoldenTests.DigQueryNoEdns),
            Convert.FromHexString(DnsCodecGoldenTests.DnsmasqAnswerSrv),
            Convert.FromHexString(DnsCodecGoldenTests.DnsmasqAnswerCname),
        };
        string[] names = ["web.mesh", "WEB.Mesh", "tasks.web.mesh", "big.mesh", "_http._tcp.web.mesh", "v4only.mesh", "boom.mesh",
            "nope.mesh", "4.1.0.10.in-addr.arpa.mesh", "example.com", "fail.example.com", "huge.example.com", "."];
        DnsType[] types = [DnsType.A, DnsType.AAAA, DnsType.SRV, DnsType.PTR, DnsType.ANY, DnsType.TXT, DnsType.AXFR, DnsType.MAILB];
        foreach (var name in names)
        {
            foreach (var type in types)
            {
                foreach (var edns in new DnsEdns?[] { null, new() { UdpPayloadSize = 1232, Options = [new DnsEdnsOption(10, new byte[8])] },
                             new() { UdpPayloadSize = (ushort)rng.Next(0, 700) }, new() { UdpPayloadSize = 4096, Version = 1 } })
                {
                    var m = new DnsMessage { Id = (ushort)rng.Next(65536), RecursionDesired = true, Edns = edns };
                    m.Questions.Add(new DnsQuestion(DnsName.Parse(name), type, rng.Next(8) == 0 ? DnsClass.CH : DnsClass.IN));
                    if (rng.Next(6) == 0) m.OpCode = DnsOpCode.Update;
                    corpus.Add(m.ToArray());
                }
            }
        }
        return corpus;
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        if (n > 2 && rng.Next(2) == 0) b[2] &= 0x7F; // mostly queries
        return b;
    }

    private static readonly byte[] Interesting = [0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xC0, 0xFF, 0x0C, 0x29];

    internal static byte[] Mutate(Random rng, byte[] input)
    {
        var b = new List<byte>(input);
        int ops = 1 + rng.Next(4);
        for (int k = 0; k < ops; k++)
        {
            if (b.Count == 0) b.Add(0);
            int p = rng.Next(b.Count);
            switch (rng.Next(9))
            {
                case 0: b[p] ^= (byte)(1 << rng.Next(8)); break;
                case 1: b[p] = Interesting[rng.Next(Interesting.Length)]; break;
                case 2: b[p] = (byte)rng.Next(256); break;
                case 3: b.RemoveRange(p, b.Count - p); break;                                  // truncate
                case 4: b.InsertRange(p, RandomBytes(rng, rng.Next(1, 8))); break;              // insert junk
                case 5: if (p + 1 < b.Count) { b[p] = (byte)(0xC0 | rng.Next(2)); b[p + 1] = (byte)rng.Next(256); } break; // pointer
                case 6: if (b.Count > 12) { int c = 4 + 2 * rng.Next(4); b[c] = 0; b[c + 1] = (byte)rng.Next(4); } break; // counts
                case 7: { int len = Math.Min(rng.Next(1, 20), b.Count - p); b.InsertRange(p, b.GetRange(p, len)); break; } // duplicate
                default: b.RemoveAt(p); break;
            }
        }
        return b.ToArray();
    }
}
