namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>An nf_tables table. <see cref="Handle"/> and <see cref="Use"/> are filled in by dumps only.</summary>
public sealed record Table(Family Family, string Name, uint Flags = 0)
{
    public ulong Handle { get; init; }

    /// <summary>How many chains the table holds (NFTA_TABLE_USE).</summary>
    public uint Use { get; init; }

    public override string ToString() => $"table {Family.Name()} {Name}";
}
