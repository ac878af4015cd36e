namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// Constants from /usr/include/linux/netfilter/nfnetlink.h and nf_tables.h (kernel 6.x uapi). Integer attributes
/// are big-endian (NLA_BE32/NLA_BE64) throughout nf_tables; register contents (data values) are in the order the
/// expression that loads them uses (payload: network order, meta mark: host order).
/// </summary>
internal static class NfTablesConstants
{
    public const int NETLINK_NETFILTER = 12;
    public const byte NFNL_SUBSYS_NFTABLES = 10;
    public const ushort NFNL_MSG_BATCH_BEGIN = 0x10;
    public const ushort NFNL_MSG_BATCH_END = 0x11;
    public const int NFGENMSG_LEN = 4;

    // enum nf_tables_msg_types
    public const byte NFT_MSG_NEWTABLE = 0;
    public const byte NFT_MSG_GETTABLE = 1;
    public const byte NFT_MSG_DELTABLE = 2;
    public const byte NFT_MSG_NEWCHAIN = 3;
    public const byte NFT_MSG_GETCHAIN = 4;
    public const byte NFT_MSG_DELCHAIN = 5;
    public const byte NFT_MSG_NEWRULE = 6;
    public const byte NFT_MSG_GETRULE = 7;
    public const byte NFT_MSG_DELRULE = 8;
    public const byte NFT_MSG_NEWSET = 9;
    public const byte NFT_MSG_GETSET = 10;
    public const byte NFT_MSG_DELSET = 11;
    public const byte NFT_MSG_NEWSETELEM = 12;
    public const byte NFT_MSG_GETSETELEM = 13;
    public const byte NFT_MSG_DELSETELEM = 14;
    public const byte NFT_MSG_NEWGEN = 15;
    public const byte NFT_MSG_GETGEN = 16;
    public const byte NFT_MSG_NEWOBJ = 18;
    public const byte NFT_MSG_DELOBJ = 20;
    public const byte NFT_MSG_NEWFLOWTABLE = 22;
    public const byte NFT_MSG_DELFLOWTABLE = 24;

    /// <summary>NFNLGRP_NFTABLES (enum nfnetlink_groups): every committed nf_tables change is announced to it.</summary>
    public const int NFNLGRP_NFTABLES = 7;

    public static ushort MessageType(byte msg) => (ushort)((NFNL_SUBSYS_NFTABLES << 8) | msg);

    // Request flags beyond netlink.h's NetlinkMessageFlags
    public const ushort NLM_F_REPLACE = 0x100;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;
    public const ushort NLM_F_APPEND = 0x800;

    // enum nft_table_attributes
    public const ushort NFTA_TABLE_NAME = 1;
    public const ushort NFTA_TABLE_FLAGS = 2;
    public const ushort NFTA_TABLE_USE = 3;
    public const ushort NFTA_TABLE_HANDLE = 4;

    // enum nft_chain_attributes, nft_hook_attributes
    public const ushort NFTA_CHAIN_TABLE = 1;
    public const ushort NFTA_CHAIN_HANDLE = 2;
    public const ushort NFTA_CHAIN_NAME = 3;
    public const ushort NFTA_CHAIN_HOOK = 4;
    public const ushort NFTA_CHAIN_POLICY = 5;
    public const ushort NFTA_CHAIN_USE = 6;
    public const ushort NFTA_CHAIN_TYPE = 7;
    public const ushort NFTA_HOOK_HOOKNUM = 1;
    public const ushort NFTA_HOOK_PRIORITY = 2;

    // enum nft_rule_attributes
    public const ushort NFTA_RULE_TABLE = 1;
    public const ushort NFTA_RULE_CHAIN = 2;
    public const ushort NFTA_RULE_HANDLE = 3;
    public const ushort NFTA_RULE_EXPRESSIONS = 4;
    public const ushort NFTA_RULE_USERDATA = 7;

    // enum nft_list_attributes, nft_expr_attributes
    public const ushort NFTA_LIST_ELEM = 1;
    public const ushort NFTA_EXPR_NAME = 1;
    public const ushort NFTA_EXPR_DATA = 2;

    // enum nft_set_attributes, nft_set_desc_attributes
    public const ushort NFTA_SET_TABLE = 1;
    public const ushort NFTA_SET_NAME = 2;
    public const ushort NFTA_SET_FLAGS = 3;
    public const ushort NFTA_SET_KEY_TYPE = 4;
    public const ushort NFTA_SET_KEY_LEN = 5;
    public const ushort NFTA_SET_DATA_TYPE = 6;
    public const ushort NFTA_SET_DATA_LEN = 7;
    public const ushort NFTA_SET_DESC = 9;
    public const ushort NFTA_SET_ID = 10;
    public const ushort NFTA_SET_TIMEOUT = 11;
    public const ushort NFTA_SET_USERDATA = 13;
    public const ushort NFTA_SET_HANDLE = 16;
    public const ushort NFTA_SET_DESC_SIZE = 1;

    // enum nft_set_elem_list_attributes, nft_set_elem_attributes
    public const ushort NFTA_SET_ELEM_LIST_TABLE = 1;
    public const ushort NFTA_SET_ELEM_LIST_SET = 2;
    public const ushort NFTA_SET_ELEM_LIST_ELEMENTS = 3;
    public const ushort NFTA_SET_ELEM_LIST_SET_ID = 4;
    public const ushort NFTA_SET_ELEM_KEY = 1;
    public const ushort NFTA_SET_ELEM_DATA = 2;
    public const ushort NFTA_SET_ELEM_FLAGS = 3;
    public const ushort NFTA_SET_ELEM_TIMEOUT = 4;

    // enum nft_data_attributes, nft_verdict_attributes
    public const ushort NFTA_DATA_VALUE = 1;
    public const ushort NFTA_DATA_VERDICT = 2;
    public const ushort NFTA_VERDICT_CODE = 1;
    public const ushort NFTA_VERDICT_CHAIN = 2;

    // enum nft_gen_attributes
    public const ushort NFTA_GEN_ID = 1;
    public const ushort NFTA_GEN_PROC_PID = 2;
    public const ushort NFTA_GEN_PROC_NAME = 3;

    /// <summary>
    /// The first attribute of every object message (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE,
    /// NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE, NFTA_FLOWTABLE_TABLE): the object's table.
    /// </summary>
    public const ushort NFTA_ANY_TABLE = 1;

    /// <summary>NFT_DATA_VERDICT: the data type of a verdict map.</summary>
    public const uint NFT_DATA_VERDICT = 0xffffff00;

    /// <summary>NFT_USERDATA_MAXLEN.</summary>
    public const int NFT_USERDATA_MAXLEN = 256;

    /// <summary>NFT_NAME_MAXLEN (table, chain, set names; including the NUL).</summary>
    public const int NFT_NAME_MAXLEN = 256;

    /// <summary>libnftnl's rule userdata TLV type for the comment (NFTNL_UDATA_RULE_COMMENT).</summary>
    public const byte NFTNL_UDATA_RULE_COMMENT = 0;
}
