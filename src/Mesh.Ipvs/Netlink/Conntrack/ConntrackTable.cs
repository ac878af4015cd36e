namespace Mesh.Ipvs.Netlink.Conntrack;

/// <summary>How a bounded dump ended: the entries read, and whether the limit stopped it before the table's end.</summary>
public readonly record struct ConntrackDumpResult(int Read, bool Truncated);

/// <summary>
/// Reads a network namespace's conntrack table over ctnetlink (NETLINK_NETFILTER, NFNL_SUBSYS_CTNETLINK), one entry at
/// a time, at most a given number of entries: a busy node's table can hold hundreds of thousands, and a reader that
/// only counts should neither hold them all nor read them all. Each dump has its own socket, closed at the end, so a
/// dump stopped at the limit leaves nothing behind (the kernel stops when the socket goes) and a deleted namespace is
/// not kept alive.
/// </summary>
public static class ConntrackTable
{
    /// <summary>
    /// Dumps the table of the namespace at <paramref name="netnsPath"/> (null: the caller's), IPv4 and IPv6 entries
    /// alike, calling <paramref name="visit"/> for each entry, stopping after <paramref name="limit"/> entries.
    /// </summary>
    public static ConntrackDumpResult Dump(string? netnsPath, int limit, Action<ConntrackEntry> visit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ArgumentNullException.ThrowIfNull(visit);
        var operation = "IPCTNL_MSG_CT_GET dump" + (netnsPath is null ? "" : " in " + netnsPath);
        using var socket = NetlinkSocket.Open(ConntrackConstants.NETLINK_NETFILTER, netnsPath);
        var writer = new NetlinkWriter(64);
        var seq = socket.NextSequence();
        ConntrackCodec.Dump(writer, seq);
        var read = 0;
        var ended = socket.Stream(writer.WrittenSpan, seq, operation, m =>
        {
            if (read == limit)
            {
                return false; // one more entry than the limit: the table goes on
            }

            visit(ConntrackCodec.ParseEntry(m, operation));
            read++;
            return true;
        });
        return new ConntrackDumpResult(read, !ended);
    }
}
