using System.Collections.Concurrent;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Naming;

/// <summary>
/// The forward names one set of networks sees (the networks a querying task is on), for one <see cref="ServiceNameIndex"/>:
/// each name's A records are built once, on its first query, and shared by every later one. A query then costs a
/// dictionary lookup by its lower-cased name formatted on the stack, and allocates nothing (dns-bench measured
/// ~1.5 KB of LINQ, strings, addresses and records per query before). Only names the index knows are kept, so clients
/// asking random names cannot grow it. Thread-safe.
/// </summary>
internal sealed class NetworkNames
{
    private readonly ServiceNameIndex _index;
    private readonly ConcurrentDictionary<string, Answer?> _answers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Answer?>.AlternateLookup<ReadOnlySpan<char>> _byText;

    public NetworkNames(ServiceNameIndex index, string[] networks)
    {
        _index = index;
        Networks = networks;
        _byText = _answers.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The networks, in the querier's order (the order of a vip service's answers).</summary>
    public string[] Networks { get; }

    /// <summary>What <see cref="NameResolution.Resolve"/> gives for a lower-case <paramref name="name"/>: null when it resolves to nothing.</summary>
    public Answer? Find(ReadOnlySpan<char> name)
    {
        if (_byText.TryGetValue(name, out var known))
        {
            return known;
        }

        if (!_index.IsKnownName(name))
        {
            return null; // resolves to nothing: not cached, or random names would grow the table
        }

        var text = name.ToString();
        var addresses = NameResolution.Resolve(_index, text, Networks, out _);
        var answer = addresses is null ? null : new Answer(text, addresses, NameResolution.IsRoundRobin(_index, text));
        return _answers.GetOrAdd(text, answer);
    }

    /// <summary>A name's A records (owner: the lower-case name; written compressed against the question, so the client sees its own case).</summary>
    internal sealed class Answer
    {
        private readonly DnsRecord[]? _records;
        private readonly IReadOnlyList<System.Net.IPAddress> _addresses;

        public Answer(string name, IReadOnlyList<System.Net.IPAddress> addresses, bool shuffle)
        {
            _addresses = addresses;
            Shuffle = shuffle;
            if (DnsName.TryParse(name, out var owner))
            {
                _records = Build(owner, addresses);
            }
        }

        /// <summary>A dnsrr service: a new order per query.</summary>
        public bool Shuffle { get; }

        /// <summary>The records for <paramref name="question"/>: shared, or a shuffled copy for dnsrr.</summary>
        public DnsRecord[] RecordsFor(DnsName question)
        {
            var records = _records ?? Build(question, _addresses);
            if (!Shuffle || records.Length < 2)
            {
                return records;
            }

            var copy = (DnsRecord[])records.Clone();
            Random.Shared.Shuffle(copy);
            return copy;
        }

        private static DnsRecord[] Build(DnsName owner, IReadOnlyList<System.Net.IPAddress> addresses) =>
            addresses.Select(ip => new DnsRecord(owner, DnsType.A, DnsClass.IN, ClusterDnsAuthority.Ttl, new ARecordData(ip))).ToArray();
    }
}
