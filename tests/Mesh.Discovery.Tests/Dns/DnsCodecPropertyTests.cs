using FsCheck;
using FsCheck.Fluent;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

public class DnsCodecPropertyTests
{
    private static readonly Config Cfg = Config.QuickThrowOnFailure.WithMaxTest(400).WithQuietOnSuccess(true);

    [Fact]
    public void Messages_round_trip_through_the_wire_format()
    {
        Check.One(Cfg, Prop.ForAll(Arb.From(DnsGenerators.Message), (DnsMessage m) =>
        {
            var wire = m.ToArray();
            var back = DnsMessage.Parse(wire);
            DnsGenerators.AssertSameMessage(m, back);
            // Writing the parsed message again gives the same bytes (compression is deterministic).
            Assert.Equal(wire, back.ToArray());
        }));
    }

    [Fact]
    public void Compression_never_makes_a_message_longer_than_uncompressed()
    {
        Check.One(Cfg, Prop.ForAll(Arb.From(DnsGenerators.Message), (DnsMessage m) =>
        {
            int uncompressed = 12 + m.Questions.Sum(q => q.Name.WireLength + 4)
                + m.Answers.Concat(m.Authorities).Concat(m.Additionals).Sum(r => r.Name.WireLength + 10 + UncompressedRdLength(r))
                + (m.Edns?.WireLength ?? 0);
            Assert.True(m.ToArray().Length <= uncompressed);
        }));
    }

    [Fact]
    public void Truncated_writes_fit_the_limit_parse_back_and_keep_a_prefix()
    {
        var gen = from m in DnsGenerators.Message from limit in Gen.Choose(12, 1500) select (m, limit);
        Check.One(Cfg, Prop.ForAll(Arb.From(gen), ((DnsMessage M, int Limit) t) =>
        {
            var (m, limit) = t;
            limit = Math.Max(limit, 12 + (m.Edns?.WireLength ?? 0));
            var buf = new byte[65535];
            int n = m.WriteTo(buf, limit, out bool truncated);
            Assert.True(n <= limit);
            var back = DnsMessage.Parse(buf.AsSpan(0, n));
            Assert.Equal(truncated, back.IsTruncated);
            Assert.Equal(m.Questions.Take(back.Questions.Count), back.Questions);
            Assert.Equal(m.Answers.Take(back.Answers.Count), back.Answers);
            Assert.Equal(m.Authorities.Take(back.Authorities.Count), back.Authorities);
            Assert.Equal(m.Additionals.Take(back.Additionals.Count), back.Additionals);
            Assert.Equal(m.Edns, back.Edns);
            bool complete = back.Questions.Count == m.Questions.Count && back.Answers.Count == m.Answers.Count
                && back.Authorities.Count == m.Authorities.Count;
            Assert.Equal(!complete, truncated);
        }));
    }

    [Fact]
    public void Names_round_trip_through_presentation_form_and_compare_case_insensitively()
    {
        Check.One(Cfg, Prop.ForAll(Arb.From(DnsGenerators.Name), (DnsName n) =>
        {
            var text = n.ToString();
            var back = DnsName.Parse(text);
            Assert.Equal(n, back);
            Assert.True(back.WireFormat.SequenceEqual(n.WireFormat));
            var upper = DnsName.FromWire(n.WireFormat.ToArray().Select(b => b is >= (byte)'a' and <= (byte)'z' ? (byte)(b - 32) : b).ToArray());
            Assert.Equal(n, upper);
            Assert.Equal(n.GetHashCode(), upper.GetHashCode());
        }));
    }

    private static int UncompressedRdLength(DnsRecord r) => r.Data switch
    {
        ARecordData => 4,
        AaaaRecordData => 16,
        NameRecordData d => d.Name.WireLength,
        MxRecordData d => 2 + d.Exchange.WireLength,
        SrvRecordData d => 6 + d.Target.WireLength,
        SoaRecordData d => d.Primary.WireLength + d.Mailbox.WireLength + 20,
        TxtRecordData d => d.Strings.Sum(s => s.Length + 1),
        RawRecordData d => d.Data.Length,
        _ => throw new InvalidOperationException(),
    };
}
