using System.Buffers.Binary;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// What the kernel sends back is untrusted: every nf_tables decoder, given any truncation or corruption of valid
/// messages, either decodes or raises <see cref="NetlinkProtocolException"/>, never reads out of range. The valid
/// messages are the sandbox table's (a dump answers with the same layout as the request: nfgenmsg and the object's
/// attributes), every byte of each one truncated at and overwritten with 0x00, 0xff and 0x05.
/// </summary>
public class NfTablesMalformedInputTests
{
    private static readonly byte[] Batch = NfTablesSandboxLayout.Batch(NfTablesSandboxLayout.TwoServices).Build(0);

    private static void Decode(NetlinkMessage m)
    {
        switch (m.Type & 0xff)
        {
            case 0: NfTablesCodec.ParseTable(m, "fuzz"); break;
            case 3: NfTablesCodec.ParseChain(m, "fuzz"); break;
            case 6: NfTablesCodec.ParseRule(m, "fuzz"); break;
            case 9: NfTablesCodec.ParseSet(m, "fuzz"); break;
            case 12: NfTablesCodec.ParseElements(m, "fuzz"); break;
            case 15: NfTablesCodec.ParseGeneration(m, "fuzz"); break;
        }
    }

    private static void OnlyProtocolErrors(byte[] datagram)
    {
        try
        {
            foreach (var m in NetlinkDecoder.ParseMessages(datagram, "fuzz"))
            {
                Decode(m);
            }
        }
        catch (NetlinkProtocolException)
        {
        }
    }

    private static IEnumerable<byte[]> Messages()
    {
        int off = 0;
        while (off < Batch.Length)
        {
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(Batch.AsSpan(off));
            yield return Batch.AsSpan(off, len).ToArray();
            off += (len + 3) & ~3;
        }
    }

    [Fact]
    public void Valid_messages_decode()
    {
        var decoded = Messages().Select(b => NetlinkDecoder.ParseMessages(b).Single()).Where(m => m.Type >> 8 == 10).ToList();
        Assert.Equal(24, decoded.Count);
        foreach (var m in decoded) Decode(m);
        var rule = NfTablesCodec.ParseRule(decoded.First(m => (m.Type & 0xff) == 6), "test");
        Assert.Equal(10, rule.Expressions.Count);
    }

    [Fact]
    public void Every_truncation_and_byte_corruption_is_a_protocol_error_or_decodes()
    {
        foreach (var message in Messages())
        {
            for (int cut = 0; cut < message.Length; cut++)
            {
                var truncated = message[..cut];
                if (cut >= 4) BinaryPrimitives.WriteUInt32LittleEndian(truncated, (uint)cut); // a consistent nlmsg_len: the attributes are cut
                OnlyProtocolErrors(truncated);
            }
            for (int i = 0; i < message.Length; i++)
            {
                foreach (var v in new byte[] { 0x00, 0xff, 0x05 })
                {
                    var corrupt = (byte[])message.Clone();
                    corrupt[i] = v;
                    OnlyProtocolErrors(corrupt);
                }
            }
        }
    }

    [Fact]
    public void Missing_required_attribute_names_it()
    {
        // NFT_MSG_NEWCHAIN with only nfgenmsg: no table, no name.
        var m = new NetlinkMessage(0x0a03, NetlinkMessageFlags.None, 1, 0, new byte[] { 2, 0, 0, 0 });
        var e = Assert.Throws<NetlinkProtocolException>(() => NfTablesCodec.ParseChain(m, "NFT_MSG_GETCHAIN dump"));
        Assert.Contains("NFTA_CHAIN_TABLE", e.Message, StringComparison.Ordinal);
        Assert.Throws<NetlinkProtocolException>(() => NfTablesCodec.ParseChain(m with { Payload = new byte[] { 2, 0 } }, "dump"));
        Assert.Throws<NetlinkProtocolException>(() => NfTablesCodec.ParseTable(m, "dump")); // wrong type
    }
}
