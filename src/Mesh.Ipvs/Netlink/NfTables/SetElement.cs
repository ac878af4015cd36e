namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>An element of a set (key only), of a map (key : data) or of a verdict map (key : verdict).</summary>
public sealed record SetElement(NftData Key, NftData? Data = null, Verdict? Verdict = null)
{
    /// <summary>Per-element timeout in milliseconds (sets with timeouts).</summary>
    public ulong? TimeoutMs { get; init; }

    public override string ToString() => Verdict is not null ? $"{Key} : {Verdict}" : Data is { } d ? $"{Key} : {d}" : Key.ToString();
}
