using static Mesh.Ipvs.Netlink.NfTables.NfTablesConstants;

namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// A NETLINK_NETFILTER socket speaking nf_tables in the caller's network namespace or in the one at a given path:
/// transactions (<see cref="Commit"/>), dumps of tables, chains, rules, sets and elements, and the ruleset
/// generation. Methods are serialised by an internal lock. The socket holds its namespace alive: open one per piece
/// of work for a namespace that may be deleted.
/// </summary>
public sealed class NfTablesHandle : IDisposable
{
    private readonly NetlinkSocket _socket;
    private readonly NetlinkWriter _writer = new(256);
    private readonly Lock _lock = new();

    private NfTablesHandle(NetlinkSocket socket, string? netnsPath)
    {
        _socket = socket;
        NetworkNamespacePath = netnsPath;
    }

    /// <summary>The network namespace this handle works in (null: the opener's).</summary>
    public string? NetworkNamespacePath { get; }

    public static NfTablesHandle Open(string? netnsPath = null) => new(NetlinkSocket.Open(NETLINK_NETFILTER, netnsPath), netnsPath);

    /// <summary>
    /// Applies the batch as one transaction in one sendmsg. Throws <see cref="NfTablesTransactionException"/> naming
    /// every change the kernel refused (then nothing was applied); an empty batch is a no-op.
    /// </summary>
    public void Commit(NfTablesBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) return;
        lock (_lock)
        {
            int total = batch.Count + 2;
            uint first = _socket.ReserveSequences(total);
            var answers = _socket.Transact(batch.Build(first), first, total, $"nf_tables transaction{Where}");
            var failures = new List<NetlinkBatchFailure>();
            int missing = 0;
            for (int i = 0; i < total; i++)
            {
                if (answers[i] is { } a)
                {
                    if (a.Errno != 0)
                    {
                        var op = (i == 0 ? "batch begin" : i == total - 1 ? "batch end" : batch.Describe(i - 1)) + Where;
                        failures.Add(new NetlinkBatchFailure(i, op, new NetlinkException(op, a.Errno, a.Message)));
                    }
                }
                else if (i > 0 && i < total - 1)
                {
                    missing++;
                }
            }
            if (failures.Count > 0) throw new NfTablesTransactionException(batch.Count, failures, Where);
            if (missing > 0)
            {
                throw new NetlinkProtocolException($"nf_tables transaction{Where}", $"{missing} of {batch.Count} changes got no answer and none failed: the outcome is unknown");
            }
        }
    }

    /// <summary>The tables of a family.</summary>
    public IReadOnlyList<Table> GetTables(Family family)
    {
        const string op = "NFT_MSG_GETTABLE dump";
        return Exchange(op, true, (w, seq) => NfTablesCodec.DumpTables(w, seq, family)).Select(m => NfTablesCodec.ParseTable(m, op)).ToList();
    }

    /// <summary>The table, or null when there is none.</summary>
    public Table? GetTable(Family family, string name) => GetTables(family).FirstOrDefault(t => t.Name == name);

    /// <summary>The chains of one table, in the kernel's order.</summary>
    public IReadOnlyList<Chain> GetChains(Family family, string table)
    {
        const string op = "NFT_MSG_GETCHAIN dump";
        return Exchange(op, true, (w, seq) => NfTablesCodec.DumpChains(w, seq, family))
            .Select(m => NfTablesCodec.ParseChain(m, op))
            .Where(c => c.Table == table)
            .ToList();
    }

    /// <summary>The rules of a table (of one chain when given), in order, expressions decoded.</summary>
    public IReadOnlyList<Rule> GetRules(Family family, string table, string? chain = null)
    {
        string op = $"NFT_MSG_GETRULE dump {family.Name()} {table}{(chain is null ? "" : " " + chain)}";
        return Exchange(op, true, (w, seq) => NfTablesCodec.DumpRules(w, seq, family, table, chain))
            .Select(m => NfTablesCodec.ParseRule(m, op))
            .Where(r => r.Table == table && (chain is null || r.Chain == chain))
            .ToList();
    }

    /// <summary>The sets and maps of a table, anonymous ones included.</summary>
    public IReadOnlyList<Set> GetSets(Family family, string table)
    {
        string op = $"NFT_MSG_GETSET dump {family.Name()} {table}";
        return Exchange(op, true, (w, seq) => NfTablesCodec.DumpSets(w, seq, family, table))
            .Select(m => NfTablesCodec.ParseSet(m, op))
            .Where(s => s.Table == table)
            .ToList();
    }

    /// <summary>The elements of one set or map.</summary>
    public IReadOnlyList<SetElement> GetElements(Family family, string table, string set)
    {
        string op = $"NFT_MSG_GETSETELEM dump {family.Name()} {table} {set}";
        return Exchange(op, true, (w, seq) => NfTablesCodec.DumpElements(w, seq, family, table, set))
            .SelectMany(m => NfTablesCodec.ParseElements(m, op))
            .ToList();
    }

    /// <summary>The ruleset generation: the kernel bumps it on every committed transaction, whoever commits.</summary>
    public uint GetGeneration()
    {
        const string op = "NFT_MSG_GETGEN";
        var replies = Exchange(op, false, (w, seq) => NfTablesCodec.GetGeneration(w, seq));
        return replies.Count == 0 ? throw new NetlinkProtocolException(op, "no NFT_MSG_NEWGEN before the ACK") : NfTablesCodec.ParseGeneration(replies[0], op);
    }

    private string Where => NetworkNamespacePath is null ? "" : $" in {NetworkNamespacePath}";

    private List<NetlinkMessage> Exchange(string operation, bool dump, Action<NetlinkWriter, uint> build)
    {
        lock (_lock)
        {
            for (int attempt = 0; ; attempt++)
            {
                _writer.Clear();
                uint seq = _socket.NextSequence();
                build(_writer, seq);
                try
                {
                    return _socket.Request(_writer.WrittenSpan, seq, dump, operation + Where);
                }
                catch (NetlinkException e) when (dump && e.Errno == Errno.EINTR && attempt < 3)
                {
                    // NLM_F_DUMP_INTR: a transaction committed while the dump ran; read it again whole.
                }
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}
