using System.Buffers.Binary;
using System.Net;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// A dump's neighbour entries read as values (<see cref="RouteCodec.ReadNeighbourEntry"/>), and the address and MAC
/// values they hold: the same fields as the <see cref="Neighbour"/> the library writes, and bad input refused.
/// </summary>
public class NeighbourEntryTests
{
    private static NetlinkMessage Reply(Neighbour n)
    {
        var w = new NetlinkWriter();
        RouteCodec.ReplaceNeighbour(w, 1, n);
        return NetlinkDecoder.ParseMessages(w.ToArray())[0];
    }

    [Fact]
    public void An_arp_entry_reads_as_the_values_written_ipv6_included()
    {
        var v4 = RouteCodec.ReadNeighbourEntry(Reply(Neighbour.Arp(7, IPAddress.Parse("10.255.0.5"), "02:42:0A:FF:00:05")), "test");
        Assert.Equal((NeighbourFamily.Inet, 7, "10.255.0.5", 0x02420aff0005UL, true, false), (v4.Family, v4.LinkIndex, v4.Destination?.ToString(), v4.Mac, v4.Permanent, v4.Self));

        var v6 = RouteCodec.ReadNeighbourEntry(Reply(Neighbour.Arp(7, IPAddress.Parse("2001:db8::5"), null)), "test");
        Assert.Equal((NeighbourFamily.Inet6, "2001:db8::5", true, (ulong?)null), (v6.Family, v6.Destination?.ToString(), v6.Destination?.IsV6, v6.Mac));
    }

    [Fact]
    public void A_repeated_attribute_keeps_its_last_value_and_a_bad_one_is_a_protocol_error_naming_the_operation()
    {
        var m = Reply(Neighbour.Fdb(5, "02:42:0a:ff:00:05", IPAddress.Parse("192.168.50.3")));
        var bytes = m.Payload.ToArray();

        // A second NDA_DST (4 + 4 bytes) after the first: the kernel's nla_parse keeps the last, and so does the reader.
        var repeated = bytes.Concat(new byte[] { 8, 0, (byte)RouteConstants.NDA_DST, 0, 192, 168, 50, 4 }).ToArray();
        Assert.Equal("192.168.50.4", RouteCodec.ReadNeighbourEntry(m with { Payload = repeated }, "test").Destination?.ToString());

        // An NDA_DST of 5 bytes: neither IPv4 nor IPv6.
        var odd = bytes.Concat(new byte[] { 9, 0, (byte)RouteConstants.NDA_DST, 0, 1, 2, 3, 4, 5, 0, 0, 0 }).ToArray();
        var e = Assert.Throws<NetlinkProtocolException>(() => RouteCodec.ReadNeighbourEntry(m with { Payload = odd }, "RTM_GETNEIGH dump fdb"));
        Assert.Contains("RTM_GETNEIGH dump fdb", e.Message, StringComparison.Ordinal);
        Assert.Contains("NDA_DST of 5 bytes", e.Message, StringComparison.Ordinal);

        // An attribute claiming more bytes than the message has.
        var overrun = bytes.ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(overrun.AsSpan(bytes.Length - 8), 200);
        e = Assert.Throws<NetlinkProtocolException>(() => RouteCodec.ReadNeighbourEntry(m with { Payload = overrun }, "RTM_GETNEIGH dump"));
        Assert.Contains("out of range", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.255.0.5", 0x0aff0005u)]
    [InlineData("0.0.0.0", 0u)]
    [InlineData("255.255.255.255", 0xffffffffu)]
    [InlineData("192.168.50.3", 0xc0a83203u)]
    public void A_dotted_quad_parses_without_an_object(string text, uint bits)
    {
        Assert.True(IpValue.TryParseV4(text, out var value));
        Assert.Equal((bits, false, text), (value.V4Bits, value.IsV6, value.ToString()));
        Assert.Equal(IPAddress.Parse(text), value.ToIPAddress());
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.255.0")]
    [InlineData("10.255.0.5.")]
    [InlineData("10.255.0.256")]
    [InlineData("10.255.00.5")]
    [InlineData("10.255.0.5 ")]
    [InlineData("1234.1.1.1")]
    [InlineData("10..0.5")]
    [InlineData("::1")]
    [InlineData("+1.2.3.4")]
    public void Anything_but_a_canonical_dotted_quad_is_not_ipv4(string text) =>
        Assert.False(IpValue.TryParseV4(text, out _));

    [Fact]
    public void Parse_takes_ipv6_too_and_refuses_what_is_not_an_address()
    {
        var v6 = IpValue.Parse("2001:db8::5");
        Assert.Equal((true, IPAddress.Parse("2001:db8::5")), (v6.IsV6, v6.ToIPAddress()));
        Assert.NotEqual(IpValue.Parse("0.0.0.5"), IpValue.Parse("::5"));
        var e = Assert.Throws<FormatException>(() => IpValue.Parse("10.255.0.x"));
        Assert.Contains("'10.255.0.x'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("02:42:0a:ff:00:05", 0x02420aff0005UL)]
    [InlineData("00:00:00:00:00:00", 0UL)]
    [InlineData("ff:ff:ff:ff:ff:ff", 0xffffffffffffUL)]
    public void A_mac_goes_between_text_bytes_and_value(string text, ulong value)
    {
        Assert.True(MacText.TryParse(text.ToUpperInvariant(), out var parsed));
        Assert.Equal(value, parsed);
        Assert.Equal(text, MacText.Format(value));
        Assert.Equal(value, MacText.Read(RouteCodec.ParseMac(text)));
        Assert.Equal(text, RouteCodec.FormatMac(RouteCodec.ParseMac(text)));
    }

    [Theory]
    [InlineData("02:42:0a:ff:00")]
    [InlineData("02:42:0a:ff:00:05:")]
    [InlineData("02-42-0a-ff-00-05")]
    [InlineData("02:42:0a:ff:00:g5")]
    [InlineData("02:42:0a:ff:00:+5")]
    public void A_bad_mac_is_not_parsed(string text) => Assert.False(MacText.TryParse(text, out _));
}
