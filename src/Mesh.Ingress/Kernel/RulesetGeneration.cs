namespace Mesh.Ingress.Kernel;

/// <summary>
/// Arithmetic of a namespace's nf_tables ruleset generation (NFT_MSG_GETGEN): the kernel adds one per committed
/// transaction, whoever commits, and skips 0 when it wraps (nf_tables_commit: <c>while (++base_seq == 0)</c>).
/// </summary>
public static class RulesetGeneration
{
    /// <summary>The generation the next committed transaction makes.</summary>
    public static uint Next(uint generation) => generation == uint.MaxValue ? 1 : generation + 1;

    /// <summary>Whether <paramref name="a"/> was made before or is <paramref name="b"/> (serial order, safe across the wrap).</summary>
    public static bool AtOrBefore(uint a, uint b) => unchecked((int)(a - b)) <= 0;

    /// <summary>
    /// The generation what was read is exact at: the one before the read, if the one after it is the same (nobody
    /// committed during the read); else null.
    /// </summary>
    public static uint? ExactAfterRead(uint? before, uint? after) => before is not null && after == before ? after : null;

    /// <summary>
    /// The generation what was written is exact at: what it was planned against must still have been exact when the
    /// write began (<paramref name="before"/> is <paramref name="plannedAt"/>: nobody committed since) and the write must
    /// have been the only commit (<paramref name="after"/> one step on); else null.
    /// </summary>
    public static uint? ExactAfterWrite(uint? plannedAt, uint? before, uint? after) =>
        before is { } b && b == plannedAt && after == Next(b) ? after : null;
}
