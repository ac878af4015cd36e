using System.Net.Sockets;
using FsCheck;
using FsCheck.Fluent;
using Mesh.Ipvs.Codec;
using Mesh.Ipvs.Netlink;

namespace Mesh.Ipvs.Tests;

public class MalformedInputTests
{
    private static readonly byte[] Valid = Hex.Parse(DecodeTests.ServiceDumpDatagram);

    /// <summary>Decodes everything a reply could be; only NetlinkProtocolException may escape.</summary>
    private static void DecodeAll(byte[] data)
    {
        foreach (var m in NetlinkDecoder.ParseMessages(data, "fuzz"))
        {
            if (m.IsError) { NetlinkDecoder.ParseError(m, "fuzz"); continue; }
            if (m.IsDone) { NetlinkDecoder.ParseDoneErrno(m); continue; }
            Try(() => IpvsReplies.Service(m, "fuzz"));
            Try(() => IpvsReplies.Destination(m, AddressFamily.InterNetwork, "fuzz"));
            Try(() => IpvsReplies.Info(m, "fuzz"));
            Try(() => IpvsReplies.Timeouts(m, "fuzz"));
            Try(() => GenericNetlink.ParseFamily(m, "fuzz"));
        }

        static void Try(Action a)
        {
            try { a(); }
            catch (NetlinkProtocolException) { }
        }
    }

    private static bool OnlyProtocolErrors(byte[] data)
    {
        try
        {
            DecodeAll(data);
            return true;
        }
        catch (NetlinkProtocolException)
        {
            return true;
        }
        // Any other exception (IndexOutOfRange, ArgumentOutOfRange...) fails the property by propagating.
    }

    [Fact]
    public void EveryTruncation_IsAClearProtocolError()
    {
        for (int len = 1; len < Valid.Length; len++)
        {
            var cut = Valid[..len];
            if (len == 164) { DecodeAll(cut); continue; } // exactly the first message: valid on its own
            var ex = Assert.Throws<NetlinkProtocolException>(() => NetlinkDecoder.ParseMessages(cut, "IPVS_CMD_GET_SERVICE"));
            Assert.StartsWith("IPVS_CMD_GET_SERVICE failed: EBADMSG (74): malformed netlink message", ex.Message);
        }
    }

    [Fact]
    public void AttributeLengthBeyondMessage_Throws()
    {
        var bad = (byte[])Valid.Clone();
        bad[20] = 0xF0; // IPVS_CMD_ATTR_SERVICE nla_len 0x90 -> 0xf0, beyond the message
        var m = NetlinkDecoder.ParseMessages(bad)[0];
        var ex = Assert.Throws<NetlinkProtocolException>(() => IpvsReplies.Service(m, "IPVS_CMD_GET_SERVICE"));
        Assert.Contains("nla_len 240", ex.Message);
    }

    [Fact]
    public void AttributeLengthBelowHeader_Throws()
    {
        var bad = (byte[])Valid.Clone();
        bad[24] = 0x02; // IPVS_SVC_ATTR_AF nla_len 6 -> 2
        var m = NetlinkDecoder.ParseMessages(bad)[0];
        Assert.Throws<NetlinkProtocolException>(() => IpvsReplies.Service(m, "t"));
    }

    [Fact]
    public void ShortFixedAttribute_Throws()
    {
        var bad = (byte[])Valid.Clone();
        bad[60] = 0x05; // IPVS_SVC_ATTR_PORT nla_len 6 -> 5: one byte of a __be16
        var m = NetlinkDecoder.ParseMessages(bad)[0];
        var ex = Assert.Throws<NetlinkProtocolException>(() => IpvsReplies.Service(m, "t"));
        Assert.Contains("IPVS_SVC_ATTR_PORT", ex.Message);
    }

    [Fact]
    public void MissingServiceNest_Throws()
    {
        var bytes = Hex.Parse("14 00 00 00 20 00 00 00 01 00 00 00 00 00 00 00  01 01 00 00");
        var ex = Assert.Throws<NetlinkProtocolException>(() => IpvsReplies.Service(NetlinkDecoder.ParseMessages(bytes)[0], "t"));
        Assert.Contains("IPVS_CMD_ATTR_SERVICE", ex.Message);
    }

    [Fact]
    public void ShortGenlHeaderAndShortError_Throw()
    {
        var noGenl = Hex.Parse("12 00 00 00 20 00 00 00 01 00 00 00 00 00 00 00  01 01");
        Assert.Throws<NetlinkProtocolException>(() => IpvsReplies.Info(NetlinkDecoder.ParseMessages(noGenl)[0], "t"));
        var shortErr = Hex.Parse("14 00 00 00 02 00 00 00 01 00 00 00 00 00 00 00  ef ff ff ff");
        Assert.Throws<NetlinkProtocolException>(() => NetlinkDecoder.ParseError(NetlinkDecoder.ParseMessages(shortErr)[0]));
    }

    [Fact]
    public void UnknownAddressFamily_Throws()
    {
        var bad = (byte[])Valid.Clone();
        bad[28] = 0x07; // AF 2 -> 7
        var ex = Assert.Throws<NetlinkProtocolException>(() => IpvsReplies.Service(NetlinkDecoder.ParseMessages(bad)[0], "t"));
        Assert.Contains("address family 7", ex.Message);
    }

    [Fact]
    public void Property_RandomBytes_NeverCrashTheDecoder()
    {
        var gen = Gen.Choose(0, 255).Select(i => (byte)i).ArrayOf();
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2000), Prop.ForAll(gen.ToArbitrary(), OnlyProtocolErrors));
    }

    [Fact]
    public void Property_MutatedValidReply_NeverCrashesTheDecoder()
    {
        var gen =
            from count in Gen.Choose(1, 6)
            from positions in Gen.Choose(0, Valid.Length - 1).ArrayOf(count)
            from values in Gen.Choose(0, 255).ArrayOf(count)
            from cut in Gen.Choose(16, Valid.Length)
            select Mutate(positions, values, cut);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(3000), Prop.ForAll(gen.ToArbitrary(), OnlyProtocolErrors));

        static byte[] Mutate(int[] positions, int[] values, int cut)
        {
            var b = (byte[])Valid.Clone();
            for (int i = 0; i < positions.Length; i++) b[positions[i]] = (byte)values[i];
            return b[..cut];
        }
    }
}
