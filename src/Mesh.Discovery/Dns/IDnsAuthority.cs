namespace Mesh.Discovery.Dns;

/// <summary>
/// The source of the answers the embedded server gives for names it owns. Called synchronously on the
/// server's receive path for every query: it must be fast, must not block, and must be thread-safe.
/// An exception thrown from <see cref="Lookup"/> becomes SERVFAIL (and a log line).
/// </summary>
public interface IDnsAuthority
{
    /// <param name="question">The question as asked (name case preserved; compare with <see cref="DnsName.Equals(DnsName)"/>,
    /// which is case-insensitive). Only class IN and ANY questions reach the authority; others are forwarded.</param>
    /// <param name="context">Which task is asking (the server is per task namespace).</param>
    DnsLookupResult Lookup(DnsQuestion question, DnsClientContext context);

    /// <summary>The store revision of the state the answers come from, if the authority has one (traces carry it).</summary>
    long Revision => -1;
}

/// <summary>Identifies the querying task. <see cref="TaskId"/> and <see cref="State"/> are the values given in
/// <see cref="EmbeddedDnsServerOptions"/>; <see cref="Transport"/> is how this query arrived.</summary>
public readonly record struct DnsClientContext(string TaskId, object? State, DnsTransport Transport);

public enum DnsLookupStatus : byte
{
    /// <summary>Not a name this authority owns: the server forwards the query upstream.</summary>
    NotMine = 0,
    /// <summary>Records answer the question (NOERROR, AA).</summary>
    Answered,
    /// <summary>The name exists but has no records of the asked type (NOERROR, empty answer), e.g. AAAA of a v4-only service.</summary>
    NoData,
    /// <summary>The name does not exist in a domain this authority owns (NXDOMAIN).</summary>
    NameError,
}

/// <summary>What the authority says about a question. <c>default</c> is <see cref="NotMine"/>.</summary>
public readonly struct DnsLookupResult
{
    private DnsLookupResult(DnsLookupStatus status, IReadOnlyList<DnsRecord>? answers, IReadOnlyList<DnsRecord>? authorities, IReadOnlyList<DnsRecord>? additionals)
    {
        Status = status;
        Answers = answers ?? [];
        Authorities = authorities ?? [];
        Additionals = additionals ?? [];
    }

    public DnsLookupStatus Status { get; }
    /// <summary>Answer records (owner names normally the question name; TTL 0–few seconds).</summary>
    public IReadOnlyList<DnsRecord> Answers { get => field ?? []; }
    /// <summary>Authority records, e.g. an SOA on NoData / NameError for negative caching (optional).</summary>
    public IReadOnlyList<DnsRecord> Authorities { get => field ?? []; }
    /// <summary>Additional records, e.g. the A records of SRV targets (dropped first when space runs out).</summary>
    public IReadOnlyList<DnsRecord> Additionals { get => field ?? []; }

    public static DnsLookupResult NotMine => default;

    /// <summary>Answered. An empty <paramref name="answers"/> list means <see cref="DnsLookupStatus.NoData"/>.</summary>
    public static DnsLookupResult Answer(IReadOnlyList<DnsRecord> answers, IReadOnlyList<DnsRecord>? additionals = null) =>
        new(answers.Count == 0 ? DnsLookupStatus.NoData : DnsLookupStatus.Answered, answers, null, additionals);

    public static DnsLookupResult Answer(params DnsRecord[] answers) => Answer((IReadOnlyList<DnsRecord>)answers);

    public static DnsLookupResult NoData(IReadOnlyList<DnsRecord>? authorities = null) => new(DnsLookupStatus.NoData, null, authorities, null);

    public static DnsLookupResult NameError(IReadOnlyList<DnsRecord>? authorities = null) => new(DnsLookupStatus.NameError, null, authorities, null);
}
