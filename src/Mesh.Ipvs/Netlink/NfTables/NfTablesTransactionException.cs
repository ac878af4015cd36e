namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// A transaction was refused: the kernel aborted it whole, so nothing of it was applied. <see cref="Failures"/> names
/// each change that failed (its operation, e.g. "add rule ip mesh svc-web: ...", and errno); the exception's own
/// operation and errno are the first failure's.
/// </summary>
public sealed class NfTablesTransactionException : NetlinkException
{
    public NfTablesTransactionException(int total, IReadOnlyList<NetlinkBatchFailure> failures, string? where = null)
        : base(failures[0].Operation, failures[0].Error.Errno,
            $"nf_tables transaction{where} of {total} changes aborted, nothing applied; {failures.Count} failed, first #{failures[0].Index}" +
            (failures[0].Error.Detail is { } d ? $": {d}" : ""),
            failures[0].Error)
    {
        Failures = failures;
        Total = total;
    }

    public IReadOnlyList<NetlinkBatchFailure> Failures { get; }

    public int Total { get; }
}
