using System.Buffers.Binary;
using static Mesh.Ipvs.Netlink.NfTables.NfTablesConstants;

namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// Decodes the messages of NFNLGRP_NFTABLES (nf_tables_api.c: nf_tables_*_notify, nf_tables_gen_notify). Object
/// messages have the dump's layout (an element notification is a one-element list, decoded as the dump's); only what
/// tells whose table changed, which set (of set and element messages), and how for elements, is decoded. A message of another type decodes as
/// <see cref="NfTablesObjectKind.Unknown"/>; a malformed one raises <see cref="NetlinkProtocolException"/>.
/// </summary>
public static class NfTablesNotificationCodec
{
    public static bool IsGeneration(NetlinkMessage m) => m.Type == MessageType(NFT_MSG_NEWGEN);

    /// <summary>The low 16 bits of the generation the message's transaction made (nfgenmsg.res_id, big-endian).</summary>
    public static ushort GenerationTag(NetlinkMessage m, string operation) =>
        m.Payload.Length < NFGENMSG_LEN
            ? throw new NetlinkProtocolException(operation, $"nf_tables message of {m.Payload.Length} payload bytes, shorter than nfgenmsg")
            : BinaryPrimitives.ReadUInt16BigEndian(m.Payload.Span[2..]);

    public static NfTablesNotification Decode(NetlinkMessage m, string operation)
    {
        if (m.Type >> 8 != NFNL_SUBSYS_NFTABLES)
        {
            return new NfTablesNotification(NfTablesObjectKind.Unknown, false, 0, 0, m.PortId);
        }

        var tag = GenerationTag(m, operation);
        var (kind, deleted) = (byte)m.Type switch
        {
            NFT_MSG_NEWTABLE => (NfTablesObjectKind.Table, false),
            NFT_MSG_DELTABLE => (NfTablesObjectKind.Table, true),
            NFT_MSG_NEWCHAIN => (NfTablesObjectKind.Chain, false),
            NFT_MSG_DELCHAIN => (NfTablesObjectKind.Chain, true),
            NFT_MSG_NEWRULE => (NfTablesObjectKind.Rule, false),
            NFT_MSG_DELRULE => (NfTablesObjectKind.Rule, true),
            NFT_MSG_NEWSET => (NfTablesObjectKind.Set, false),
            NFT_MSG_DELSET => (NfTablesObjectKind.Set, true),
            NFT_MSG_NEWSETELEM => (NfTablesObjectKind.Element, false),
            NFT_MSG_DELSETELEM => (NfTablesObjectKind.Element, true),
            NFT_MSG_NEWOBJ => (NfTablesObjectKind.StatefulObject, false),
            NFT_MSG_DELOBJ => (NfTablesObjectKind.StatefulObject, true),
            NFT_MSG_NEWFLOWTABLE => (NfTablesObjectKind.Flowtable, false),
            NFT_MSG_DELFLOWTABLE => (NfTablesObjectKind.Flowtable, true),
            NFT_MSG_NEWGEN => (NfTablesObjectKind.Generation, false),
            _ => (NfTablesObjectKind.Unknown, false),
        };
        if (kind == NfTablesObjectKind.Unknown)
        {
            return new NfTablesNotification(kind, false, 0, tag, m.PortId);
        }

        var (family, a) = NfTablesCodec.Body(m, operation);
        if (kind == NfTablesObjectKind.Generation)
        {
            return new NfTablesNotification(kind, false, family, tag, m.PortId)
            {
                Generation = a.GetBe32(NFTA_GEN_ID, "NFTA_GEN_ID"),
                ProcessId = a.Has(NFTA_GEN_PROC_PID) ? a.GetBe32(NFTA_GEN_PROC_PID, "NFTA_GEN_PROC_PID") : null,
                ProcessName = a.GetStringOrNull(NFTA_GEN_PROC_NAME),
            };
        }

        var notification = new NfTablesNotification(kind, deleted, family, tag, m.PortId) { Table = a.GetString(NFTA_ANY_TABLE, "table name") };
        return kind switch
        {
            NfTablesObjectKind.Element => notification with { Set = a.GetString(NFTA_SET_ELEM_LIST_SET, "NFTA_SET_ELEM_LIST_SET"), Elements = NfTablesCodec.ElementList(a, operation) },
            NfTablesObjectKind.Set => notification with { Set = a.GetString(NFTA_SET_NAME, "NFTA_SET_NAME") },
            _ => notification,
        };
    }
}
