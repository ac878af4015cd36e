using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// The kernel's announcements of committed nf_tables transactions in one namespace (<see cref="NfTablesMonitor"/>), read
/// as the change log of one Mesh table: when the ruleset generation moved past the generation the executor's memory is
/// exact at, <see cref="Follow"/> says what the transactions in between did to that table. Each transaction is announced
/// as its object messages (tagged with the low 16 bits of its generation) and then NFT_MSG_NEWGEN; the kernel commits
/// one transaction at a time and announces it before the next. What the log cannot vouch for is a doubt, and a doubt
/// makes the executor read the table back: a subscription that could not be opened or lost messages (overrun), a
/// namespace replaced at the path, a generation missing or out of order, one not (yet) announced, a message not
/// decoded or tagged with another generation, the table deleted, and a map the memory plans deleted (its elements go
/// with it unannounced). Element adds and deletes in those maps are gathered; any other change to the table (a rule,
/// a chain, a set's definition, an element of a set the memory does not plan) says its structure changed: the executor
/// reads back the chains, rules and sets only, and keeps its memory of the maps' elements.
/// Mesh's own commits are recognised by the generation they made (<see cref="Skip"/>).
/// Invariant: every transaction after generation <c>_since</c> is in the backlog or queued on the socket.
/// </summary>
public sealed class NftChangeLog(string? netnsPath, Family family, string table, int receiveBuffer) : IDisposable
{
    /// <summary>
    /// The kernel announces every element of a transaction in its own message (~100 bytes, ~150 with the socket
    /// buffer's overhead): a cold program of 110,000 elements queues ~16 MB before <see cref="Skip"/> reads it.
    /// Memory is charged only while messages are queued.
    /// </summary>
    public const int DefaultReceiveBuffer = 64 << 20;

    private readonly Lock _lock = new();
    private readonly List<NetlinkMessage> _backlog = [];
    private NfTablesMonitor? _monitor;
    private NetworkNamespaceId? _namespace;
    private uint? _since;

    private string Operation => $"nf_tables notifications for {family.Name()} {table}" + (netnsPath is null ? "" : $" in {netnsPath}");

    /// <summary>
    /// Drops what is queued and subscribes anew: from the generation <paramref name="generation"/> gives once the socket
    /// is subscribed, every transaction is in the log. Left closed (every <see cref="Follow"/> a doubt) when the socket
    /// cannot be opened or the namespace at the path changed meanwhile.
    /// </summary>
    public void Restart(Func<uint?> generation)
    {
        ArgumentNullException.ThrowIfNull(generation);
        lock (_lock)
        {
            Open(generation);
        }
    }

    /// <summary>
    /// After Mesh's own commit made <paramref name="generation"/> (and nobody else committed since what it was planned
    /// on was exact): drops what the log holds up to it, so that the queue holds only what came after. After an overrun
    /// it subscribes anew, good from <paramref name="current"/> on (from this generation if nobody committed since).
    /// </summary>
    public void Skip(uint generation, Func<uint?> current)
    {
        ArgumentNullException.ThrowIfNull(current);
        lock (_lock)
        {
            if (_monitor is null)
            {
                return;
            }

            try
            {
                var (messages, overrun) = _monitor.Drain();
                if (!overrun)
                {
                    _backlog.AddRange(messages);
                    var last = _backlog.FindLastIndex(m => NfTablesNotificationCodec.IsGeneration(m) && RulesetGeneration.AtOrBefore(GenerationOf(m), generation));
                    _backlog.RemoveRange(0, last + 1);
                    return;
                }
            }
            catch (NetlinkException)
            {
                // Not understood: anew, as after an overrun.
            }

            Open(current);
        }
    }

    private void Open(Func<uint?> generation)
    {
        Close();
        try
        {
            var before = Identify();
            var monitor = NfTablesMonitor.Open(netnsPath, receiveBuffer);
            var since = generation();
            if (since is null || Identify() != before)
            {
                monitor.Dispose();
                return;
            }

            (_monitor, _namespace, _since) = (monitor, before, since);
        }
        catch (Exception e) when (e is NetlinkException or IOException)
        {
            // No nf_tables or no namespace: stays closed, and the executor reads.
        }
    }

    /// <summary>
    /// What the transactions after <paramref name="from"/> (the memory is exact there) up to <paramref name="to"/> (the
    /// generation now) did to the table: nothing, or element adds and deletes in maps <paramref name="knows"/> names, in
    /// commit order, and whether anything else of the table changed (<see cref="Outcome.Structure"/>); or a doubt. Transactions announced after <paramref name="to"/> stay in the log for the next time.
    /// </summary>
    public Outcome Follow(uint from, uint to, Func<string, bool> knows)
    {
        ArgumentNullException.ThrowIfNull(knows);
        lock (_lock)
        {
            try
            {
                return Read(from, to, knows);
            }
            catch (NetlinkException e)
            {
                return Outcome.Doubt(e.Message);
            }
            catch (IOException e)
            {
                return Outcome.Doubt(e.Message);
            }
        }
    }

    private Outcome Read(uint from, uint to, Func<string, bool> knows)
    {
        if (_monitor is null || _since is not { } since)
        {
            return Outcome.Doubt("no subscription to nf_tables notifications");
        }

        if (Identify() != _namespace)
        {
            return Outcome.Doubt("another namespace is at the path now");
        }

        if (!RulesetGeneration.AtOrBefore(since, from))
        {
            return Outcome.Doubt($"the log starts at generation {since}, after {from}");
        }

        var (messages, overrun) = _monitor.Drain();
        if (overrun)
        {
            return Outcome.Doubt("notifications were lost (receive buffer overrun)");
        }

        _backlog.AddRange(messages);
        var elements = new List<ForeignElement>();
        var structure = false;
        var at = from;
        var start = 0; // the first message of the transaction being gathered
        for (var i = 0; i < _backlog.Count && at != to; i++)
        {
            if (!NfTablesNotificationCodec.IsGeneration(_backlog[i]))
            {
                continue;
            }

            var generation = GenerationOf(_backlog[i]);
            if (RulesetGeneration.AtOrBefore(generation, from))
            {
                start = i + 1; // known already (read or written by Mesh)
                continue;
            }

            if (generation != RulesetGeneration.Next(at))
            {
                return Outcome.Doubt($"generation {generation} announced after {at}");
            }

            for (var j = start; j < i; j++)
            {
                if (Classify(_backlog[j], generation, knows, elements, ref structure) is { } doubt)
                {
                    return Outcome.Doubt(doubt);
                }
            }

            (at, start) = (generation, i + 1);
        }

        _backlog.RemoveRange(0, start);
        return at == to ? new Outcome(to, elements, structure, null) : Outcome.Doubt($"generation {to} not announced (yet): the last is {at}");
    }

    /// <summary>
    /// A doubt, or null when the message is about another table, an element in a known map (then gathered) or another
    /// change of the table that a read of its chains, rules and sets shows (then <paramref name="structure"/> is set).
    /// </summary>
    private string? Classify(NetlinkMessage message, uint generation, Func<string, bool> knows, List<ForeignElement> elements, ref bool structure)
    {
        var n = NfTablesNotificationCodec.Decode(message, Operation);
        if (n.Kind == NfTablesObjectKind.Unknown)
        {
            return $"{n} (type 0x{message.Type:x4})";
        }

        if (n.GenerationTag != (ushort)generation)
        {
            return $"{n} tagged with generation {n.GenerationTag} in the announcement of generation {generation}";
        }

        if (n.Family != family || n.Table != table)
        {
            return null;
        }

        // The table deleted, or one of the memory's maps (DELSET announces none of the elements it takes along): only a
        // whole read knows what is left. A map re-created after that is in the same log, behind the doubt.
        if ((n.Kind == NfTablesObjectKind.Table && n.Deleted) || (n.Kind == NfTablesObjectKind.Set && n.Deleted && (n.Set is null || knows(n.Set))))
        {
            return $"{n} (generation {generation}, port {n.PortId})";
        }

        if (n.Kind == NfTablesObjectKind.Element && n.Set is not null && knows(n.Set))
        {
            foreach (var element in n.Elements)
            {
                elements.Add(new ForeignElement(n.Set, element, n.Deleted));
            }

            return null;
        }

        // A rule or chain added or deleted, a set added, updated or deleted that the memory does not plan (an anonymous
        // set of a rule, one added by hand) and its elements, which no plan reads: the structure read shows the rest.
        structure = true;
        return null;
    }

    private uint GenerationOf(NetlinkMessage m) =>
        NfTablesNotificationCodec.Decode(m, Operation).Generation ?? throw new NetlinkProtocolException(Operation, "NFT_MSG_NEWGEN without NFTA_GEN_ID");

    private NetworkNamespaceId? Identify() => netnsPath is null ? null : NetworkNamespace.Identify(netnsPath);

    private void Close()
    {
        _monitor?.Dispose();
        (_monitor, _namespace, _since) = (null, null, null);
        _backlog.Clear();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            Close();
        }
    }

    /// <summary>An element someone else added to or deleted from one of the table's maps.</summary>
    public sealed record ForeignElement(string Map, SetElement Element, bool Deleted);

    /// <summary>
    /// Where <see cref="Follow"/> got: exact at <see cref="ExactAt"/> with <see cref="Elements"/> taken in and, when
    /// <see cref="Structure"/>, the chains, rules and sets to read back; or <see cref="DoubtReason"/>.
    /// </summary>
    public sealed record Outcome(uint? ExactAt, IReadOnlyList<ForeignElement> Elements, bool Structure, string? DoubtReason)
    {
        public static Outcome Doubt(string reason) => new(null, [], false, reason);
    }
}
