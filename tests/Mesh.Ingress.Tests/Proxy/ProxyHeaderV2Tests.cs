using System.Net;
using Mesh.Ingress.Lab;
using Mesh.Ingress.Proxy;
using Xunit;

namespace Mesh.Ingress.Tests.Proxy;

public sealed class ProxyHeaderV2Tests
{
    // haproxy's proxy-protocol.txt, 2.2: TCP over IPv4 from 198.18.0.100:51000 to 10.255.0.6:80.
    private static readonly byte[] Tcp4 =
    [
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x21, 0x11, 0x00, 0x0C,
        198, 18, 0, 100, 10, 255, 0, 6,
        0xC7, 0x38, 0x00, 0x50,
    ];

    [Fact]
    public void Writes_the_spec_layout_for_tcp_over_ipv4()
    {
        var header = ProxyHeaderV2.ForConnection(ProxyTransport.Stream, IPEndPoint.Parse("198.18.0.100:51000"), IPEndPoint.Parse("10.255.0.6:80"));
        Assert.Equal(Tcp4, header.ToBytes());
    }

    [Fact]
    public void Reads_what_it_writes_and_says_how_many_bytes_were_the_header()
    {
        var withPayload = Tcp4.Concat("GET / HTTP/1.1\r\n"u8.ToArray()).ToArray();
        Assert.Equal(ProxyParse.Complete, ProxyHeaderV2.TryRead(withPayload, out var header, out var consumed));
        Assert.Equal(Tcp4.Length, consumed);
        Assert.Equal(ProxyCommand.Proxy, header!.Command);
        Assert.Equal(ProxyTransport.Stream, header.Transport);
        Assert.Equal(IPEndPoint.Parse("198.18.0.100:51000"), header.Source);
        Assert.Equal(IPEndPoint.Parse("10.255.0.6:80"), header.Destination);
    }

    [Fact]
    public void Round_trips_ipv6_and_datagrams_and_maps_v4_in_v6_sources_back_to_ipv4()
    {
        var v6 = ProxyHeaderV2.ForConnection(ProxyTransport.Datagram, IPEndPoint.Parse("[2001:db8::1]:5353"), IPEndPoint.Parse("[2001:db8::2]:53"));
        Assert.Equal(ProxyParse.Complete, ProxyHeaderV2.TryRead(v6.ToBytes(), out var read, out var consumed));
        Assert.Equal(16 + 36, consumed);
        Assert.Equal(v6, read);

        var mapped = ProxyHeaderV2.ForConnection(ProxyTransport.Stream, IPEndPoint.Parse("[::ffff:198.18.0.100]:1"), IPEndPoint.Parse("[::ffff:10.0.0.1]:2"));
        Assert.Equal(IPEndPoint.Parse("198.18.0.100:1"), mapped.Source);
        Assert.Equal(28, mapped.ToBytes().Length);
    }

    [Fact]
    public void A_plain_request_is_not_proxy_and_a_short_prefix_of_the_signature_needs_more_bytes()
    {
        Assert.Equal(ProxyParse.NotProxy, ProxyHeaderV2.TryRead("GET / HTTP/1.1\r\n"u8, out _, out var consumed));
        Assert.Equal(0, consumed);
        Assert.Equal(ProxyParse.NotProxy, ProxyHeaderV2.TryRead("\r\n\r\nX"u8, out _, out _));
        Assert.Equal(ProxyParse.Incomplete, ProxyHeaderV2.TryRead(Tcp4.AsSpan(0, 5), out _, out _));
        Assert.Equal(ProxyParse.Incomplete, ProxyHeaderV2.TryRead(Tcp4.AsSpan(0, 20), out _, out _));
    }

    [Fact]
    public void Local_carries_no_addresses_and_unknown_versions_commands_and_huge_lengths_are_refused()
    {
        var local = new ProxyHeaderV2(ProxyCommand.Local, ProxyTransport.Unspecified, null, null).ToBytes();
        Assert.Equal(ProxyParse.Complete, ProxyHeaderV2.TryRead(local, out var header, out _));
        Assert.Null(header!.Source);

        var v1 = (byte[])Tcp4.Clone();
        v1[12] = 0x11;
        Assert.Contains("version 1", Assert.Throws<FormatException>(() => ProxyHeaderV2.TryRead(v1, out _, out _)).Message, StringComparison.Ordinal);
        var command = (byte[])Tcp4.Clone();
        command[12] = 0x27;
        Assert.Contains("command 7", Assert.Throws<FormatException>(() => ProxyHeaderV2.TryRead(command, out _, out _)).Message, StringComparison.Ordinal);
        var huge = (byte[])Tcp4.Clone();
        huge[14] = 0xFF;
        Assert.Contains("65292 bytes", Assert.Throws<FormatException>(() => ProxyHeaderV2.TryRead(huge, out _, out _)).Message, StringComparison.Ordinal);
        var shortBody = (byte[])Tcp4.Clone();
        shortBody[15] = 4;
        Assert.Contains("4 address bytes", Assert.Throws<FormatException>(() => ProxyHeaderV2.TryRead(shortBody, out _, out _)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_lab_answer_has_six_fields_with_dashes_for_what_is_unknown()
    {
        Assert.Equal(
            "web.1 mesh-n1 10.255.0.6 peer=198.18.0.100 xff=- proxy=-\n",
            LabServer.Answer("web.1", "mesh-n1", IPAddress.Parse("10.255.0.6"), IPAddress.Parse("::ffff:198.18.0.100"), "", null));
        Assert.Equal(
            "web.1 mesh-n1 10.255.0.6 peer=10.255.0.2 xff=198.18.0.100,10.0.0.1 proxy=198.18.0.100:5\n",
            LabServer.Answer("web.1", "mesh-n1", IPAddress.Parse("10.255.0.6"), IPAddress.Parse("10.255.0.2"), "198.18.0.100, 10.0.0.1", "198.18.0.100:5"));
    }
}
