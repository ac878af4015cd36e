namespace Mesh.Ipvs.Netlink;

/// <summary>
/// A netlink operation failed. <see cref="Errno"/> is the positive errno the kernel (or libc) reported and
/// <see cref="Operation"/> names what was being done, e.g. "IPVS_CMD_NEW_SERVICE failed: EEXIST (17)".
/// Catch with <c>catch (NetlinkException e) when (e.Errno == Errno.EEXIST)</c> or use
/// <see cref="AlreadyExists"/> / <see cref="NotFound"/>.
/// </summary>
public class NetlinkException : Exception
{
    public NetlinkException(string operation, int errno, string? detail = null, Exception? inner = null)
        : base(Format(operation, errno, detail), inner)
    {
        Operation = operation;
        Errno = errno;
        Detail = detail;
    }

    /// <summary>The operation that failed (e.g. "IPVS_CMD_NEW_SERVICE", "socket(AF_NETLINK)").</summary>
    public string Operation { get; }

    /// <summary>Positive errno value.</summary>
    public int Errno { get; }

    /// <summary>Symbolic errno name ("EEXIST").</summary>
    public string ErrnoName => Netlink.Errno.Name(Errno);

    /// <summary>Extended-ack message from the kernel or other detail, if any.</summary>
    public string? Detail { get; }

    public bool AlreadyExists => Errno == Netlink.Errno.EEXIST;
    public bool NotFound => Errno == Netlink.Errno.ENOENT || Errno == Netlink.Errno.ESRCH;

    private static string Format(string operation, int errno, string? detail)
    {
        var s = $"{operation} failed: {Netlink.Errno.Name(errno)} ({errno})";
        return string.IsNullOrEmpty(detail) ? s : $"{s}: {detail}";
    }
}

/// <summary>
/// A reply from the kernel could not be decoded (truncated, bad lengths, wrong sequence...).
/// Its <see cref="NetlinkException.Errno"/> is EBADMSG.
/// </summary>
public sealed class NetlinkProtocolException : NetlinkException
{
    public NetlinkProtocolException(string operation, string detail)
        : base(operation, Netlink.Errno.EBADMSG, "malformed netlink message: " + detail)
    {
    }
}

/// <summary>One failed operation of a batch.</summary>
public sealed record NetlinkBatchFailure(int Index, string Operation, NetlinkException Error);

/// <summary>
/// Some operations of a batch failed; the others were applied (the kernel processes every message of a batch).
/// <see cref="NetlinkException.Errno"/> is the first failure's errno.
/// </summary>
public sealed class NetlinkBatchException : NetlinkException
{
    public NetlinkBatchException(int total, IReadOnlyList<NetlinkBatchFailure> failures)
        : base(failures[0].Operation, failures[0].Error.Errno,
            $"{failures.Count} of {total} batched operations failed; first at index {failures[0].Index}: {failures[0].Error.Message}",
            failures[0].Error)
    {
        Failures = failures;
        Total = total;
    }

    public IReadOnlyList<NetlinkBatchFailure> Failures { get; }
    public int Total { get; }
}
