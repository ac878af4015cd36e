using System.Buffers.Binary;
using System.Globalization;

namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// One nf_tables transaction: the changes in order, each one netlink message with NLM_F_ACK, between
/// NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END. The kernel applies all of it or, when any message fails, none of it;
/// <see cref="NfTablesHandle.Commit"/> maps each failure back to the change that caused it
/// (<see cref="Operations"/>). Messages are numbered 1..N (BEGIN is 0, END N+1), as nft numbers them, and renumbered
/// from the socket's sequence when committed. Sets added here get transaction ids 1, 2, ... that the rules and
/// elements of the same batch refer to them by (anonymous sets: the last one added under that name).
/// </summary>
public sealed class NfTablesBatch
{
    /// <summary>
    /// Bytes of elements per NEWSETELEM message: a message's element list is one attribute, whose length is a u16.
    /// </summary>
    public const int ElementBytesPerMessage = 60_000;

    private readonly NetlinkWriter _writer = new(4096);
    private readonly List<int> _offsets = [];
    // Described lazily: a description formats the whole object (a rule's every expression), and it is read only when
    // that change fails, not for each of the 40,000 changes of a cold table.
    private readonly List<Func<string>> _operations = [];
    private readonly Dictionary<string, uint> _setIds = new(StringComparer.Ordinal);
    private uint _nextSetId = 1;

    /// <summary>What each message does, e.g. "add rule ip mesh svc-web: ...": index i is message i+1 of the batch.</summary>
    public IReadOnlyList<string> Operations => _operations.Select(d => d()).ToList();

    /// <summary>What message <paramref name="index"/> + 1 of the batch does.</summary>
    public string Describe(int index) => _operations[index]();

    public int Count => _operations.Count;

    public NfTablesBatch AddTable(Table table)
    {
        Add(() => $"add {table}", (w, seq) => NfTablesCodec.NewTable(w, seq, table));
        return this;
    }

    public NfTablesBatch DeleteTable(Family family, string name)
    {
        Add(() => $"delete table {family.Name()} {name}", (w, seq) => NfTablesCodec.DeleteTable(w, seq, family, name));
        return this;
    }

    public NfTablesBatch AddChain(Chain chain)
    {
        Add(() => $"add {chain}", (w, seq) => NfTablesCodec.NewChain(w, seq, chain));
        return this;
    }

    public NfTablesBatch DeleteChain(Family family, string table, string chain)
    {
        Add(() => $"delete chain {family.Name()} {table} {chain}", (w, seq) => NfTablesCodec.DeleteChain(w, seq, family, table, chain));
        return this;
    }

    public NfTablesBatch FlushChain(Family family, string table, string chain)
    {
        Add(() => $"flush chain {family.Name()} {table} {chain}", (w, seq) => NfTablesCodec.FlushChain(w, seq, family, table, chain));
        return this;
    }

    public NfTablesBatch AddRule(Rule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        Add(() => $"add {rule}", (w, seq) => NfTablesCodec.NewRule(w, seq, rule, SetId));
        return this;
    }

    /// <summary>Deletes a rule read back from the kernel (by its handle).</summary>
    public NfTablesBatch DeleteRule(Rule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (rule.Handle == 0) throw new ArgumentException($"{rule}: deleting a rule needs its handle (read it back first)", nameof(rule));
        Add(() => $"delete rule {rule.Family.Name()} {rule.Table} {rule.Chain} handle {rule.Handle.ToString(CultureInfo.InvariantCulture)}",
            (w, seq) => NfTablesCodec.DeleteRule(w, seq, rule.Family, rule.Table, rule.Chain, rule.Handle));
        return this;
    }

    public NfTablesBatch AddSet(Set set)
    {
        ArgumentNullException.ThrowIfNull(set);
        uint id = _nextSetId++;
        Add(() => $"add {set}", (w, seq) => NfTablesCodec.NewSet(w, seq, set, id));
        _setIds[set.Name] = id;
        return this;
    }

    public NfTablesBatch DeleteSet(Family family, string table, string set)
    {
        Add(() => $"delete set {family.Name()} {table} {set}", (w, seq) => NfTablesCodec.DeleteSet(w, seq, family, table, set));
        return this;
    }

    public NfTablesBatch FlushSet(Family family, string table, string set)
    {
        Add(() => $"flush set {family.Name()} {table} {set}", (w, seq) => NfTablesCodec.FlushSet(w, seq, family, table, set));
        return this;
    }

    /// <summary>Adds elements (in messages of up to <see cref="ElementBytesPerMessage"/>); an element that is there with the same data is no error.</summary>
    public NfTablesBatch AddElements(Family family, string table, string set, IReadOnlyList<SetElement> elements) =>
        Elements("add", family, table, set, elements, NfTablesCodec.NewElements);

    /// <summary>Deletes elements by key; a key that is not there fails the transaction (ENOENT).</summary>
    public NfTablesBatch DeleteElements(Family family, string table, string set, IReadOnlyList<SetElement> elements) =>
        Elements("delete", family, table, set, elements, NfTablesCodec.DeleteElements);

    private delegate void ElementsWriter(NetlinkWriter w, uint seq, Family family, string table, string set, uint? setId, IReadOnlyList<SetElement> elements);

    private NfTablesBatch Elements(string verb, Family family, string table, string set, IReadOnlyList<SetElement> elements, ElementsWriter write)
    {
        ArgumentNullException.ThrowIfNull(elements);
        var setId = SetId(set);
        int start = 0;
        while (start < elements.Count)
        {
            int end = start, bytes = 0;
            while (end < elements.Count && (end == start || bytes + EncodedSize(elements[end]) <= ElementBytesPerMessage))
            {
                bytes += EncodedSize(elements[end]);
                end++;
            }
            var chunk = new SetElement[end - start];
            for (int i = 0; i < chunk.Length; i++) chunk[i] = elements[start + i];
            int first = start;
            start = end;
            Add(() => $"{verb} element {family.Name()} {table} {set} " + (chunk.Length == 1
                    ? $"{{ {chunk[0]} }}"
                    : $"{{ {chunk[0]}, ... }} ({chunk.Length.ToString(CultureInfo.InvariantCulture)} elements from #{first.ToString(CultureInfo.InvariantCulture)})"),
                (w, seq) => write(w, seq, family, table, set, setId, chunk));
        }
        return this;
    }

    /// <summary>An element's bytes in NFTA_SET_ELEM_LIST_ELEMENTS (a larger one than 64 KiB fails when encoded, naming it).</summary>
    private static int EncodedSize(SetElement e)
    {
        static int Value(int length) => 4 + 4 + ((length + 3) & ~3); // nested attribute + NFTA_DATA_VALUE
        int size = 4 + Value(e.Key.Length) + (e.TimeoutMs is null ? 0 : 12);
        if (e.Verdict is { } v) size += 4 + 4 + 8 + (v.Chain is null ? 0 : 4 + ((System.Text.Encoding.UTF8.GetByteCount(v.Chain) + 1 + 3) & ~3));
        else if (e.Data is { } d) size += Value(d.Length);
        return size;
    }

    private uint? SetId(string name) => _setIds.TryGetValue(name, out var id) ? id : null;

    /// <summary>
    /// The whole transaction as one buffer: BEGIN with sequence <paramref name="firstSeq"/>, the changes
    /// firstSeq+1..firstSeq+N, END firstSeq+N+1.
    /// </summary>
    public byte[] Build(uint firstSeq = 0)
    {
        var head = new NetlinkWriter(32);
        NfTablesCodec.BatchBegin(head, firstSeq);
        var tail = new NetlinkWriter(32);
        NfTablesCodec.BatchEnd(tail, unchecked(firstSeq + (uint)Count + 1));
        var body = _writer.WrittenSpan;
        var buffer = new byte[head.Length + body.Length + tail.Length];
        head.WrittenSpan.CopyTo(buffer);
        body.CopyTo(buffer.AsSpan(head.Length));
        tail.WrittenSpan.CopyTo(buffer.AsSpan(head.Length + body.Length));
        for (int i = 0; i < _offsets.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(head.Length + _offsets[i] + 8), unchecked(firstSeq + (uint)i + 1));
        }
        return buffer;
    }

    private void Add(Func<string> describe, Action<NetlinkWriter, uint> write)
    {
        int before = _writer.Length;
        try
        {
            write(_writer, (uint)_operations.Count + 1);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            _writer.Truncate(before);
            throw new ArgumentException($"{describe()}: {e.Message}", e);
        }
        _offsets.Add((before + 3) & ~3); // BeginMessage aligns
        _operations.Add(describe);
    }
}
