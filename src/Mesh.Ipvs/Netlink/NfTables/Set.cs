namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>enum nft_set_flags.</summary>
[Flags]
public enum SetFlags : uint
{
    None = 0,
    Anonymous = 0x1,
    Constant = 0x2,
    Interval = 0x4,
    Map = 0x8,
    Timeout = 0x10,
    Eval = 0x20,
    Object = 0x40,
    Concat = 0x80,
}

/// <summary>
/// nft's data type of a set's key or a map's data: nft's type id (which the kernel stores for nft to print with) and
/// the length in bytes. A concatenation's id packs its parts 6 bits each, and each part takes a whole 4-byte register.
/// </summary>
public readonly record struct SetDataType(uint Id, uint Length)
{
    public static SetDataType Verdict { get; } = new(NfTablesConstants.NFT_DATA_VERDICT, 0);
    public static SetDataType Integer32 { get; } = new(4, 4);
    public static SetDataType Ipv4Address { get; } = new(7, 4);
    public static SetDataType InetProto { get; } = new(12, 1);
    public static SetDataType InetService { get; } = new(13, 2);
    public static SetDataType Mark { get; } = new(19, 4);

    public bool IsVerdict => Id == NfTablesConstants.NFT_DATA_VERDICT;

    public static SetDataType Concat(params SetDataType[] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Length is < 2 or > 5) throw new ArgumentException("a concatenation has 2 to 5 parts", nameof(parts));
        uint id = 0, len = 0;
        foreach (var p in parts)
        {
            if (p.IsVerdict || p.Id >= 64) throw new ArgumentException($"type {p.Id} cannot be part of a concatenation", nameof(parts));
            id = (id << 6) | p.Id;
            len += (p.Length + 3) & ~3u;
        }
        return new SetDataType(id, len);
    }
}

/// <summary>
/// A set or, with <see cref="SetFlags.Map"/> and <see cref="DataType"/>, a map (a verdict map when the data type is
/// <see cref="SetDataType.Verdict"/>). An anonymous set is named <c>__set%d</c> or <c>__map%d</c> when added; the kernel
/// picks the number, and a rule in the same batch refers to it by that name (the last one added).
/// <see cref="UserData"/> is what nft stores for itself (byte order, typeof): opaque to the kernel.
/// </summary>
public sealed record Set(Family Family, string Table, string Name, SetDataType KeyType, SetFlags Flags = SetFlags.None)
{
    public SetDataType? DataType { get; init; }

    /// <summary>Expected element count (NFTA_SET_DESC_SIZE): nft gives it for constant anonymous sets.</summary>
    public uint? Size { get; init; }

    /// <summary>Default element timeout in milliseconds (with <see cref="SetFlags.Timeout"/>).</summary>
    public ulong? TimeoutMs { get; init; }

    public NftData? UserData { get; init; }

    public ulong Handle { get; init; }

    public bool IsMap => (Flags & SetFlags.Map) != 0;

    public override string ToString() => $"{(IsMap ? "map" : "set")} {Family.Name()} {Table} {Name}";
}
