namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>What an nf_tables notification is about.</summary>
public enum NfTablesObjectKind : byte
{
    /// <summary>A message this decoder does not know (another type, another subsystem): nothing can be said about it.</summary>
    Unknown,
    Table,
    Chain,
    Rule,
    Set,
    Element,
    StatefulObject,
    Flowtable,

    /// <summary>NFT_MSG_NEWGEN: the end of one committed transaction's announcement.</summary>
    Generation,
}

/// <summary>
/// One message the kernel sends to NFNLGRP_NFTABLES when a transaction commits: each changed object (NEWTABLE/DELTABLE,
/// ..., one NEWSETELEM/DELSETELEM per element), then NFT_MSG_NEWGEN with the new generation. Every message carries the
/// committer's netlink port id and, in nfgenmsg's res_id, the low 16 bits of the generation the transaction made
/// (<see cref="GenerationTag"/>).
/// </summary>
public sealed record NfTablesNotification(NfTablesObjectKind Kind, bool Deleted, Family Family, ushort GenerationTag, uint PortId)
{
    /// <summary>The object's table (every kind but <see cref="NfTablesObjectKind.Generation"/> and unknown ones).</summary>
    public string? Table { get; init; }

    /// <summary>The set of a set or element notification.</summary>
    public string? Set { get; init; }

    /// <summary>The elements of an element notification (the kernel announces one per message).</summary>
    public IReadOnlyList<SetElement> Elements { get; init; } = [];

    /// <summary>NEWGEN's generation (NFTA_GEN_ID).</summary>
    public uint? Generation { get; init; }

    /// <summary>NEWGEN's committing process (NFTA_GEN_PROC_PID, NFTA_GEN_PROC_NAME), when the kernel names it.</summary>
    public uint? ProcessId { get; init; }

    public string? ProcessName { get; init; }

    public override string ToString() => Kind switch
    {
        NfTablesObjectKind.Generation => $"generation {Generation} by {ProcessName ?? "?"}[{ProcessId}] (port {PortId})",
        NfTablesObjectKind.Element => $"{(Deleted ? "delete" : "add")} element {Family.Name()} {Table} {Set} {{ {string.Join(", ", Elements)} }}",
        NfTablesObjectKind.Unknown => $"unknown nf_tables message (port {PortId})",
        NfTablesObjectKind.Set => $"{(Deleted ? "delete" : "add")} set {Family.Name()} {Table} {Set}",
        _ => $"{(Deleted ? "delete" : "add")} {Kind.ToString().ToLowerInvariant()} in {Family.Name()} {Table}",
    };
}
