using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

public class DnsCodecMalformedTests
{
    private const string Header1Q = "abcd01000001000000000000";

    [Theory]
    [InlineData("", "empty")]
    [InlineData("abcd0100000100", "short header")]
    [InlineData(Header1Q, "question missing")]
    [InlineData(Header1Q + "03777777", "name cut inside a label")]
    [InlineData(Header1Q + "0377777700000100", "qtype/qclass cut")]
    [InlineData(Header1Q + "c00c00010001", "pointer to itself")]
    [InlineData(Header1Q + "c00e00010001", "forward pointer")]
    [InlineData(Header1Q + "c00200010001", "pointer into the header")]
    [InlineData(Header1Q + "4061000010001", "extended label type 01")]
    [InlineData(Header1Q + "80000010001", "label type 10")]
    [InlineData(Header1Q + "01610000010001ff", "trailing byte")]
    [InlineData("abcd01000002000000000000" + "01610000010001", "qdcount larger than content")]
    [InlineData("abcd0100ffffffffffffffff" + "01610000010001", "absurd counts")]
    public void Malformed_messages_are_rejected(string hex, string why)
    {
        if (hex.Length % 2 == 1) hex += "0";
        Assert.False(DnsMessage.TryParse(Convert.FromHexString(hex), out _), why);
        Assert.Throws<DnsFormatException>(() => DnsMessage.Parse(Convert.FromHexString(hex)));
    }

    [Fact]
    public void Label_of_64_bytes_is_rejected()
    {
        var hex = Header1Q + "40" + new string('6', 128) + "0000010001";
        Assert.False(DnsMessage.TryParse(Convert.FromHexString(hex), out _));
    }

    [Fact]
    public void Name_of_256_bytes_is_rejected_and_255_accepted()
    {
        // 4 labels of 63 = 256 bytes + root → too long; 3×63 + 61 + root = 255 → fine.
        string L(int n) => n.ToString("x2") + string.Concat(Enumerable.Repeat("61", n));
        Assert.False(DnsMessage.TryParse(Convert.FromHexString(Header1Q + L(63) + L(63) + L(63) + L(63) + "00" + "00010001"), out _));
        Assert.True(DnsMessage.TryParse(Convert.FromHexString(Header1Q + L(63) + L(63) + L(63) + L(61) + "00" + "00010001"), out var m));
        Assert.Equal(255, m!.Questions[0].Name.WireLength);
    }

    [Fact]
    public void Name_grown_past_255_through_pointers_is_rejected()
    {
        // First question: 200-byte name at 12. Second: 60-byte label + pointer to it → 261 bytes.
        string L(int n) => n.ToString("x2") + string.Concat(Enumerable.Repeat("62", n));
        var first = L(63) + L(63) + L(63) + L(8) + "00";
        var hex = "abcd01000002000000000000" + first + "00010001" + L(60) + "c00c" + "00010001";
        Assert.False(DnsMessage.TryParse(Convert.FromHexString(hex), out _));
    }

    [Fact]
    public void Pointer_loop_through_two_names_is_rejected()
    {
        // Name at 12: label "a" then pointer to 17; name at 17: pointer back to 12. Both point "forward"
        // from somebody's point of view: rejected regardless of which is read first.
        var hex = "abcd01000002000000000000" + "0161c011" + "00010001" + "c00c" + "00010001";
        Assert.False(DnsMessage.TryParse(Convert.FromHexString(hex), out _));
    }

    [Theory]
    [InlineData("c00c000100010000003c000501020304ff", "A with 5 bytes")]
    [InlineData("c00c000100010000003c00030102ff", "A with 3 bytes")]
    [InlineData("c00c001c00010000003c000401020304", "AAAA with 4 bytes")]
    [InlineData("c00c000100010000003c00ff01020304", "rdlength past the end")]
    [InlineData("c00c000500010000003c00030161ff", "CNAME name runs past rdata")]
    [InlineData("c00c000500010000003c0004016100ff", "CNAME with trailing rdata byte")]
    [InlineData("c00c001000010000003c0000", "TXT with no strings")]
    [InlineData("c00c001000010000003c000205ff", "TXT string past rdata")]
    [InlineData("c00c002100010000003c0004000100020003", "SRV without target")]
    [InlineData("00002900000000000000050001000100", "OPT in the answer section")]
    public void Malformed_records_are_rejected(string rr, string why)
    {
        var hex = "abcd81800001000100000000" + "0161076578616d706c6500" + "00010001" + rr;
        Assert.False(DnsMessage.TryParse(Convert.FromHexString(hex), out _), why);
    }

    [Fact]
    public void Two_opt_records_and_non_root_opt_are_rejected()
    {
        const string q = "0161076578616d706c6500" + "00010001";
        const string opt = "0000291000000000000000";
        Assert.True(DnsMessage.TryParse(Convert.FromHexString("abcd01000001000000000001" + q + opt), out _));
        Assert.False(DnsMessage.TryParse(Convert.FromHexString("abcd01000001000000000002" + q + opt + opt), out _));
        Assert.False(DnsMessage.TryParse(Convert.FromHexString("abcd01000001000000000001" + q + "c00c00291000000000000000"), out _));
        // Option length past OPT rdata.
        Assert.False(DnsMessage.TryParse(Convert.FromHexString("abcd01000001000000000001" + q + "00002910000000000000040008ffff"), out _));
    }

    [Theory]
    [InlineData("a..b")]
    [InlineData(".a")]
    [InlineData("")]
    [InlineData("a\\")]
    [InlineData("a\\25")]
    [InlineData("a\\256")]
    [InlineData("é.example")]
    public void Bad_presentation_names_are_rejected(string text) => Assert.False(DnsName.TryParse(text, out _));

    [Fact]
    public void Presentation_names_escape_and_unescape()
    {
        var n = DnsName.Parse("a\\.b\\032c.Example.");
        Assert.Equal(1 + 5 + 1 + 7 + 1, n.WireLength); // "a.b c"(5) + "Example"(7) + root
        Assert.Equal("a\\.b\\032c.Example", n.ToString());
        Assert.Equal(2, n.LabelCount);
        Assert.True(n.IsSubdomainOf(DnsName.Parse("EXAMPLE")));
        Assert.False(DnsName.Parse("xexample").IsSubdomainOf(DnsName.Parse("example")));
        Assert.Equal(".", DnsName.Root.ToString());
        Assert.Equal(DnsName.Parse("."), DnsName.Root);
        Assert.Equal(DnsName.Parse("tasks.web"), DnsName.Parse("web").Prepend("tasks"));
        Assert.Equal(DnsName.Parse("web"), DnsName.Parse("TASKS.web").Parent());
    }
}
