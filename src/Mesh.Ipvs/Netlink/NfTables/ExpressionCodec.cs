using System.Text;
using static Mesh.Ipvs.Netlink.NfTables.NfTablesConstants;

namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// Expressions ⇄ NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }. Attributes are written in libnftnl's order
/// (so requests equal nft's byte for byte, see the golden tests); integers are big-endian. Decoding checks every
/// length and type it reads; an expression it does not model comes back as <see cref="UnknownExpression"/>.
/// </summary>
internal static class ExpressionCodec
{
    // Per-expression attribute numbers (enum nft_*_attributes).
    private const ushort META_DREG = 1, META_KEY = 2, META_SREG = 3;
    private const ushort CMP_SREG = 1, CMP_OP = 2, CMP_DATA = 3;
    private const ushort PAYLOAD_DREG = 1, PAYLOAD_BASE = 2, PAYLOAD_OFFSET = 3, PAYLOAD_LEN = 4, PAYLOAD_SREG = 5;
    private const ushort BITWISE_SREG = 1, BITWISE_DREG = 2, BITWISE_LEN = 3, BITWISE_MASK = 4, BITWISE_XOR = 5, BITWISE_OP = 6;
    private const ushort LOOKUP_SET = 1, LOOKUP_SREG = 2, LOOKUP_DREG = 3, LOOKUP_SET_ID = 4, LOOKUP_FLAGS = 5;
    private const ushort IMMEDIATE_DREG = 1, IMMEDIATE_DATA = 2;
    private const ushort NUMGEN_DREG = 1, NUMGEN_MODULUS = 2, NUMGEN_TYPE = 3, NUMGEN_OFFSET = 4;
    private const ushort HASH_SREG = 1, HASH_DREG = 2, HASH_LEN = 3, HASH_MODULUS = 4, HASH_SEED = 5, HASH_OFFSET = 6, HASH_TYPE = 7;
    private const ushort CT_DREG = 1, CT_KEY = 2, CT_SREG = 4;
    private const ushort NAT_TYPE = 1, NAT_FAMILY = 2, NAT_ADDR_MIN = 3, NAT_ADDR_MAX = 4, NAT_PROTO_MIN = 5, NAT_PROTO_MAX = 6, NAT_FLAGS = 7;
    private const ushort MASQ_FLAGS = 1, MASQ_PROTO_MIN = 2, MASQ_PROTO_MAX = 3;
    private const ushort COUNTER_BYTES = 1, COUNTER_PACKETS = 2;
    private const ushort FIB_DREG = 1, FIB_RESULT = 2, FIB_FLAGS = 3;
    private const uint NFT_LOOKUP_F_INV = 1;
    private const uint NF_NAT_RANGE_MAP_IPS = 1;
    private const uint NF_NAT_RANGE_PROTO_SPECIFIED = 2;
    private const uint NFT_BITWISE_BOOL = 0;
    private const uint NFT_HASH_JENKINS = 0;

    /// <summary>Writes one expression. <paramref name="setId"/> gives the transaction id of a set added in the same batch.</summary>
    public static void Write(NetlinkWriter w, Expression e, Func<string, uint?> setId)
    {
        int elem = w.BeginNested(NFTA_LIST_ELEM);
        w.PutStringZ(NFTA_EXPR_NAME, e.Name);
        int data = w.BeginNested(NFTA_EXPR_DATA);
        switch (e)
        {
            case Meta m:
                w.PutBe32(META_KEY, (uint)m.Key);
                w.PutBe32(META_DREG, m.DestRegister);
                break;
            case MetaSet m:
                w.PutBe32(META_KEY, (uint)m.Key);
                w.PutBe32(META_SREG, m.SourceRegister);
                break;
            case Cmp c:
                w.PutBe32(CMP_SREG, c.SourceRegister);
                w.PutBe32(CMP_OP, (uint)c.Op);
                PutValue(w, CMP_DATA, c.Data);
                break;
            case Payload p:
                w.PutBe32(PAYLOAD_DREG, p.DestRegister);
                w.PutBe32(PAYLOAD_BASE, (uint)p.Base);
                w.PutBe32(PAYLOAD_OFFSET, p.Offset);
                w.PutBe32(PAYLOAD_LEN, p.Length);
                break;
            case Bitwise b:
                if (b.Mask.Length != b.Length || b.Xor.Length != b.Length) throw new ArgumentException($"bitwise over {b.Length} bytes needs a mask and xor of {b.Length} bytes (have {b.Mask.Length}, {b.Xor.Length})");
                w.PutBe32(BITWISE_SREG, b.SourceRegister);
                w.PutBe32(BITWISE_DREG, b.DestRegister);
                w.PutBe32(BITWISE_OP, NFT_BITWISE_BOOL);
                w.PutBe32(BITWISE_LEN, b.Length);
                PutValue(w, BITWISE_MASK, b.Mask);
                PutValue(w, BITWISE_XOR, b.Xor);
                break;
            case Lookup l:
                w.PutBe32(LOOKUP_SREG, l.SourceRegister);
                if (l.DestRegister is { } dreg) w.PutBe32(LOOKUP_DREG, dreg);
                w.PutStringZ(LOOKUP_SET, CheckName(l.Set, "set"));
                if (setId(l.Set) is { } id) w.PutBe32(LOOKUP_SET_ID, id);
                if (l.Invert) w.PutBe32(LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                break;
            case Immediate i:
                w.PutBe32(IMMEDIATE_DREG, i.DestRegister);
                PutValue(w, IMMEDIATE_DATA, i.Data);
                break;
            case VerdictExpression v:
                w.PutBe32(IMMEDIATE_DREG, Registers.Verdict);
                int d = w.BeginNested(IMMEDIATE_DATA);
                PutVerdict(w, v.Verdict);
                w.EndNested(d);
                break;
            case Numgen n:
                if (n.Modulus == 0) throw new ArgumentException("numgen modulus 0");
                w.PutBe32(NUMGEN_DREG, n.DestRegister);
                w.PutBe32(NUMGEN_MODULUS, n.Modulus);
                w.PutBe32(NUMGEN_TYPE, (uint)n.Type);
                w.PutBe32(NUMGEN_OFFSET, n.Offset);
                break;
            case JHash h:
                if (h.Modulus == 0) throw new ArgumentException("jhash modulus 0");
                w.PutBe32(HASH_SREG, h.SourceRegister);
                w.PutBe32(HASH_DREG, h.DestRegister);
                w.PutBe32(HASH_LEN, h.Length);
                w.PutBe32(HASH_MODULUS, h.Modulus);
                w.PutBe32(HASH_SEED, h.Seed);
                w.PutBe32(HASH_OFFSET, h.Offset);
                w.PutBe32(HASH_TYPE, NFT_HASH_JENKINS);
                break;
            case Ct c:
                w.PutBe32(CT_KEY, (uint)c.Key);
                w.PutBe32(CT_DREG, c.DestRegister);
                break;
            case Nat n:
                w.PutBe32(NAT_TYPE, (uint)n.Type);
                w.PutBe32(NAT_FAMILY, (uint)n.Family);
                if (n.AddressMin is { } amin) w.PutBe32(NAT_ADDR_MIN, amin);
                if (n.AddressMax is { } amax) w.PutBe32(NAT_ADDR_MAX, amax);
                if (n.ProtoMin is { } pmin) w.PutBe32(NAT_PROTO_MIN, pmin);
                if (n.ProtoMax is { } pmax) w.PutBe32(NAT_PROTO_MAX, pmax);
                if (n.Flags != 0) w.PutBe32(NAT_FLAGS, n.Flags);
                break;
            case Masquerade m:
                if (m.Flags != 0) w.PutBe32(MASQ_FLAGS, m.Flags);
                if (m.ProtoMin is { } mmin) w.PutBe32(MASQ_PROTO_MIN, mmin);
                if (m.ProtoMax is { } mmax) w.PutBe32(MASQ_PROTO_MAX, mmax);
                break;
            case Counter c:
                if (c.Bytes != 0 || c.Packets != 0)
                {
                    w.PutBe64(COUNTER_BYTES, c.Bytes);
                    w.PutBe64(COUNTER_PACKETS, c.Packets);
                }
                break;
            case Fib f:
                w.PutBe32(FIB_FLAGS, (uint)f.Flags);
                w.PutBe32(FIB_RESULT, (uint)f.Result);
                w.PutBe32(FIB_DREG, f.DestRegister);
                break;
            case UnknownExpression u:
                w.PutHeader(u.Data.Span);
                break;
            default:
                throw new ArgumentException($"expression {e.GetType().Name} has no encoding");
        }
        w.EndNested(data);
        w.EndNested(elem);
    }

    public static List<Expression> ReadList(ReadOnlyMemory<byte> list, string operation)
    {
        var result = new List<Expression>();
        foreach (var (type, value) in NetlinkAttributes.ParseList(list, operation))
        {
            if (type != NFTA_LIST_ELEM) throw new NetlinkProtocolException(operation, $"expression list holds attribute type {type}, expected NFTA_LIST_ELEM");
            result.Add(Read(NetlinkAttributes.Parse(value, operation)));
        }
        return result;
    }

    private static Expression Read(NetlinkAttributes elem)
    {
        var name = elem.GetString(NFTA_EXPR_NAME, "NFTA_EXPR_NAME");
        var raw = elem.TryGet(NFTA_EXPR_DATA, out var r) ? r : ReadOnlyMemory<byte>.Empty;
        var a = NetlinkAttributes.Parse(raw, elem.Operation);
        switch (name)
        {
            case "meta":
                return a.Has(META_SREG)
                    ? new MetaSet((MetaKey)a.GetBe32(META_KEY, "NFTA_META_KEY"), a.GetBe32(META_SREG, "NFTA_META_SREG"))
                    : new Meta((MetaKey)a.GetBe32(META_KEY, "NFTA_META_KEY"), a.GetBe32(META_DREG, "NFTA_META_DREG"));
            case "cmp":
                return new Cmp((CmpOp)a.GetBe32(CMP_OP, "NFTA_CMP_OP"), GetValue(a, CMP_DATA, "NFTA_CMP_DATA"), a.GetBe32(CMP_SREG, "NFTA_CMP_SREG"));
            case "payload" when !a.Has(PAYLOAD_SREG):
                return new Payload((PayloadBase)a.GetBe32(PAYLOAD_BASE, "NFTA_PAYLOAD_BASE"), a.GetBe32(PAYLOAD_OFFSET, "NFTA_PAYLOAD_OFFSET"), a.GetBe32(PAYLOAD_LEN, "NFTA_PAYLOAD_LEN"), a.GetBe32(PAYLOAD_DREG, "NFTA_PAYLOAD_DREG"));
            case "bitwise" when !a.Has(BITWISE_OP) || a.GetBe32(BITWISE_OP, "NFTA_BITWISE_OP") == NFT_BITWISE_BOOL:
                return new Bitwise(a.GetBe32(BITWISE_LEN, "NFTA_BITWISE_LEN"), GetValue(a, BITWISE_MASK, "NFTA_BITWISE_MASK"), GetValue(a, BITWISE_XOR, "NFTA_BITWISE_XOR"),
                    a.GetBe32(BITWISE_SREG, "NFTA_BITWISE_SREG"), a.GetBe32(BITWISE_DREG, "NFTA_BITWISE_DREG"));
            case "lookup":
                return new Lookup(a.GetString(LOOKUP_SET, "NFTA_LOOKUP_SET"), a.GetBe32(LOOKUP_SREG, "NFTA_LOOKUP_SREG"),
                    a.Has(LOOKUP_DREG) ? a.GetBe32(LOOKUP_DREG, "NFTA_LOOKUP_DREG") : null,
                    a.Has(LOOKUP_FLAGS) && (a.GetBe32(LOOKUP_FLAGS, "NFTA_LOOKUP_FLAGS") & NFT_LOOKUP_F_INV) != 0);
            case "immediate":
                uint dreg = a.GetBe32(IMMEDIATE_DREG, "NFTA_IMMEDIATE_DREG");
                var data = a.GetNested(IMMEDIATE_DATA, "NFTA_IMMEDIATE_DATA");
                if (dreg == Registers.Verdict) return new VerdictExpression(ReadVerdict(data.GetNested(NFTA_DATA_VERDICT, "NFTA_DATA_VERDICT")));
                return new Immediate(new NftData(data.Get(NFTA_DATA_VALUE, "NFTA_DATA_VALUE").Span), dreg);
            case "numgen":
                return new Numgen(a.GetBe32(NUMGEN_MODULUS, "NFTA_NG_MODULUS"), (NumgenType)a.GetBe32(NUMGEN_TYPE, "NFTA_NG_TYPE"),
                    a.Has(NUMGEN_OFFSET) ? a.GetBe32(NUMGEN_OFFSET, "NFTA_NG_OFFSET") : 0, a.GetBe32(NUMGEN_DREG, "NFTA_NG_DREG"));
            case "hash" when !a.Has(HASH_TYPE) || a.GetBe32(HASH_TYPE, "NFTA_HASH_TYPE") == NFT_HASH_JENKINS:
                return new JHash(a.GetBe32(HASH_SREG, "NFTA_HASH_SREG"), a.GetBe32(HASH_LEN, "NFTA_HASH_LEN"), a.GetBe32(HASH_MODULUS, "NFTA_HASH_MODULUS"),
                    a.Has(HASH_SEED) ? a.GetBe32(HASH_SEED, "NFTA_HASH_SEED") : 0, a.Has(HASH_OFFSET) ? a.GetBe32(HASH_OFFSET, "NFTA_HASH_OFFSET") : 0,
                    a.GetBe32(HASH_DREG, "NFTA_HASH_DREG"));
            case "ct" when !a.Has(CT_SREG):
                return new Ct((CtKey)a.GetBe32(CT_KEY, "NFTA_CT_KEY"), a.GetBe32(CT_DREG, "NFTA_CT_DREG"));
            case "nat":
                uint? Reg(ushort t, string what) => a.Has(t) ? a.GetBe32(t, what) : null;
                var addrMin = Reg(NAT_ADDR_MIN, "NFTA_NAT_REG_ADDR_MIN");
                var protoMin = Reg(NAT_PROTO_MIN, "NFTA_NAT_REG_PROTO_MIN");
                // The kernel adds the flags the registers imply (NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_SPECIFIED) and
                // dumps them: left out, a rule reads back as it was written.
                uint natFlags = a.Has(NAT_FLAGS) ? a.GetBe32(NAT_FLAGS, "NFTA_NAT_FLAGS") : 0;
                if (addrMin is not null) natFlags &= ~NF_NAT_RANGE_MAP_IPS;
                if (protoMin is not null) natFlags &= ~NF_NAT_RANGE_PROTO_SPECIFIED;
                // Likewise a max register equal to the min: the kernel fills it in when none was given.
                var addrMax = Reg(NAT_ADDR_MAX, "NFTA_NAT_REG_ADDR_MAX");
                var protoMax = Reg(NAT_PROTO_MAX, "NFTA_NAT_REG_PROTO_MAX");
                return new Nat((NatType)a.GetBe32(NAT_TYPE, "NFTA_NAT_TYPE"), (Family)a.GetBe32(NAT_FAMILY, "NFTA_NAT_FAMILY"),
                    addrMin, addrMax == addrMin ? null : addrMax, protoMin, protoMax == protoMin ? null : protoMax, natFlags);
            case "masq":
                return new Masquerade(a.Has(MASQ_FLAGS) ? a.GetBe32(MASQ_FLAGS, "NFTA_MASQ_FLAGS") : 0,
                    a.Has(MASQ_PROTO_MIN) ? a.GetBe32(MASQ_PROTO_MIN, "NFTA_MASQ_REG_PROTO_MIN") : null,
                    a.Has(MASQ_PROTO_MAX) ? a.GetBe32(MASQ_PROTO_MAX, "NFTA_MASQ_REG_PROTO_MAX") : null);
            case "counter":
                return new Counter(a.Has(COUNTER_PACKETS) ? a.GetBe64(COUNTER_PACKETS, "NFTA_COUNTER_PACKETS") : 0, a.Has(COUNTER_BYTES) ? a.GetBe64(COUNTER_BYTES, "NFTA_COUNTER_BYTES") : 0);
            case "fib":
                return new Fib((FibResult)a.GetBe32(FIB_RESULT, "NFTA_FIB_RESULT"), (FibFlags)a.GetBe32(FIB_FLAGS, "NFTA_FIB_FLAGS"), a.GetBe32(FIB_DREG, "NFTA_FIB_DREG"));
            default:
                return new UnknownExpression(name, new NftData(raw.Span));
        }
    }

    public static void PutValue(NetlinkWriter w, ushort type, NftData value)
    {
        if (value.Length is 0 or > 64) throw new ArgumentException($"a data value is 1 to 64 bytes, not {value.Length}");
        int n = w.BeginNested(type);
        w.PutAttribute(NFTA_DATA_VALUE, value.Span);
        w.EndNested(n);
    }

    public static NftData GetValue(NetlinkAttributes a, ushort type, string what) =>
        new(a.GetNested(type, what).Get(NFTA_DATA_VALUE, what + ".NFTA_DATA_VALUE").Span);

    /// <summary>Writes NFTA_DATA_VERDICT { CODE, [CHAIN] } inside an already open NFTA_*_DATA.</summary>
    public static void PutVerdict(NetlinkWriter w, Verdict verdict)
    {
        bool needsChain = verdict.Code is VerdictCode.Jump or VerdictCode.Goto;
        if (needsChain != (verdict.Chain is not null)) throw new ArgumentException($"verdict {verdict.Code} {(needsChain ? "needs" : "takes no")} chain");
        int v = w.BeginNested(NFTA_DATA_VERDICT);
        w.PutBe32(NFTA_VERDICT_CODE, unchecked((uint)(int)verdict.Code));
        if (verdict.Chain is { } chain) w.PutStringZ(NFTA_VERDICT_CHAIN, CheckName(chain, "chain"));
        w.EndNested(v);
    }

    public static Verdict ReadVerdict(NetlinkAttributes v)
    {
        var code = (VerdictCode)unchecked((int)v.GetBe32(NFTA_VERDICT_CODE, "NFTA_VERDICT_CODE"));
        return code is VerdictCode.Jump or VerdictCode.Goto
            ? new Verdict(code, v.GetString(NFTA_VERDICT_CHAIN, "NFTA_VERDICT_CHAIN"))
            : new Verdict(code);
    }

    /// <summary>Table, chain and set names: 1..255 bytes without NUL (NFT_NAME_MAXLEN with the terminator).</summary>
    public static string CheckName(string name, string what)
    {
        ArgumentNullException.ThrowIfNull(name);
        int n = Encoding.UTF8.GetByteCount(name);
        if (n == 0 || n >= NFT_NAME_MAXLEN || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"{what} name '{name.Replace("\0", "\\0", StringComparison.Ordinal)}' must be 1 to {NFT_NAME_MAXLEN - 1} bytes without NUL");
        }
        return name;
    }
}
