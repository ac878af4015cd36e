using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// NFNLGRP_NFTABLES messages as kernel 6.18 sent them (captured from a socket subscribed to group 7 while nft 1.0.6
/// committed in a namespace at generations 3, 4 and 5): each carries the committer's port id and the low 16 bits of the
/// generation its transaction made; elements are announced one per message, in the dump's encoding.
/// </summary>
public class NfTablesNotificationCodecTests
{
    // add element ip mesh m { tcp . 80 : 0x00000100 } (map m { type inet_proto . inet_service : mark; }), then its NEWGEN.
    private const string NewElement = "4c0000000c0a0004000000000d61000002000003090001006d65736800000000060002006d0000002400030020000100100001000c00010006000000005000000c0002000800010000010000";
    private const string NewGeneration3 = "2c0000000f0a0000010000000d610000000000030800010000000003080002000000610d080003006e667400";
    private const string DeleteElement = "4c0000000e0a0000000000002461000002000004090001006d65736800000000060002006d0000002400030020000100100001000c00010006000000005000000c0002000800010000010000";

    // add chain ip mesh c; add rule ip mesh c counter
    private const string NewChain = "3c000000030a0004010000002f61000002000005090001006d6573680000000006000300630000000c00020000000000000000020800060000000001";
    private const string NewRule = "64000000060a000c020000002f61000002000005090001006d6573680000000006000200630000000c0003000000000000000003300004002c0001000c000100636f756e746572001c0002000c00010000000000000000000c0002000000000000000000";

    private static NfTablesNotification Decode(string hex) =>
        NfTablesNotificationCodec.Decode(Assert.Single(NetlinkDecoder.ParseMessages(Hex.Parse(hex))), "test");

    [Fact]
    public void An_element_notification_names_its_table_set_element_generation_and_committer()
    {
        var n = Decode(NewElement);
        Assert.Equal(NfTablesObjectKind.Element, n.Kind);
        Assert.False(n.Deleted);
        Assert.Equal(Family.Ip, n.Family);
        Assert.Equal("mesh", n.Table);
        Assert.Equal("m", n.Set);
        Assert.Equal((ushort)3, n.GenerationTag);
        Assert.Equal(0x610du, n.PortId);
        var element = Assert.Single(n.Elements);
        Assert.Equal("0600000000500000", Hex.Format(element.Key.Span)); // tcp . 80, each field padded to 4 bytes
        Assert.Equal("00010000", Hex.Format(element.Data!.Value.Span)); // mark 0x100, host order

        var deleted = Decode(DeleteElement);
        Assert.True(deleted.Deleted);
        Assert.Equal((ushort)4, deleted.GenerationTag);
        Assert.Equal(element.Key, Assert.Single(deleted.Elements).Key);
    }

    [Fact]
    public void New_generation_carries_the_generation_and_the_committing_process()
    {
        var n = Decode(NewGeneration3);
        Assert.True(NfTablesNotificationCodec.IsGeneration(NetlinkDecoder.ParseMessages(Hex.Parse(NewGeneration3))[0]));
        Assert.Equal(NfTablesObjectKind.Generation, n.Kind);
        Assert.Equal(3u, n.Generation);
        Assert.Equal((ushort)3, n.GenerationTag);
        Assert.Equal(0x610du, n.ProcessId);
        Assert.Equal("nft", n.ProcessName);
    }

    [Fact]
    public void Chain_and_rule_notifications_name_their_table()
    {
        var chain = Decode(NewChain);
        Assert.Equal((NfTablesObjectKind.Chain, "mesh", (ushort)5), (chain.Kind, chain.Table, chain.GenerationTag));
        var rule = Decode(NewRule);
        Assert.Equal((NfTablesObjectKind.Rule, "mesh", false), (rule.Kind, rule.Table, rule.Deleted));
    }

    [Fact]
    public void Set_notifications_name_their_set()
    {
        // A set notification has the layout of the NEWSET/DELSET request (nf_tables_fill_set): table, then NFTA_SET_NAME.
        var w = new NetlinkWriter();
        NfTablesCodec.NewSet(w, 1, new Set(Family.Ip, "mesh", "backends", SetDataType.Ipv4Address, SetFlags.Map) { DataType = SetDataType.Mark }, 1);
        NfTablesCodec.DeleteSet(w, 2, Family.Ip, "mesh", "published-ports");
        var messages = NetlinkDecoder.ParseMessages(w.ToArray());
        var added = NfTablesNotificationCodec.Decode(messages[0], "test");
        Assert.Equal((NfTablesObjectKind.Set, false, "mesh", "backends"), (added.Kind, added.Deleted, added.Table, added.Set));
        var deleted = NfTablesNotificationCodec.Decode(messages[1], "test");
        Assert.Equal((NfTablesObjectKind.Set, true, "published-ports"), (deleted.Kind, deleted.Deleted, deleted.Set));
        Assert.Equal("delete set ip mesh published-ports", deleted.ToString());
    }

    [Fact]
    public void A_message_of_another_type_is_unknown_and_a_cut_one_is_refused()
    {
        var other = Hex.Parse(NewChain);
        other[4] = 17; // NFT_MSG_GETOBJ: never announced
        Assert.Equal(NfTablesObjectKind.Unknown, NfTablesNotificationCodec.Decode(NetlinkDecoder.ParseMessages(other)[0], "test").Kind);

        var cut = Hex.Parse(NewElement)[..20];
        cut[0] = 20; // nlmsg_len: header and nfgenmsg only, no table
        Assert.Throws<NetlinkProtocolException>(() => NfTablesNotificationCodec.Decode(NetlinkDecoder.ParseMessages(cut)[0], "test"));
    }
}
