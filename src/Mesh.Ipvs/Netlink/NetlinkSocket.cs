using Tmds.Linux;
using static Mesh.Ipvs.Netlink.NetlinkConstants;
using static Tmds.Linux.LibC;

namespace Mesh.Ipvs.Netlink;

/// <summary>
/// A netlink socket (libc through Tmds.LibC), optionally created inside another network namespace. Handles sequence numbers,
/// ACK/NLMSG_ERROR decoding, multipart dumps and batches. Not thread-safe: callers serialise (IpvsHandle locks).
/// </summary>
public sealed unsafe class NetlinkSocket : IDisposable
{
    /// <summary>Receive buffer: netlink dump datagrams are capped near 32 KiB by the kernel; 64 KiB + MSG_TRUNC
    /// detection means a datagram is never silently cut.</summary>
    public const int ReceiveBufferSize = 64 * 1024;

    /// <summary>Largest datagram one sendto() carries in a batch (well under the kernel's sk_sndbuf limit).</summary>
    public const int MaxBatchDatagram = 32 * 1024;

    private int _fd;
    private uint _seq;
    private readonly byte[] _rx = GC.AllocateUninitializedArray<byte>(ReceiveBufferSize, pinned: true);

    private NetlinkSocket(int fd, uint portId)
    {
        _fd = fd;
        PortId = portId;
        _seq = (uint)Environment.TickCount;
    }

    /// <summary>The port id the kernel assigned to this socket.</summary>
    public uint PortId { get; }

    /// <summary>Receive timeout; a kernel that never answers raises ETIMEDOUT instead of hanging.</summary>
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Opens a netlink socket of <paramref name="protocol"/> (e.g. NETLINK_GENERIC = 16), inside the
    /// network namespace at <paramref name="netnsPath"/> if given.</summary>
    public static NetlinkSocket Open(int protocol, string? netnsPath = null)
    {
        int fd = netnsPath is null ? CreateFd(protocol) : Mesh.Ipvs.NetworkNamespace.Run(netnsPath, () => CreateFd(protocol));
        try
        {
            Configure(fd);
            var addr = new SockaddrNl { Family = AF_NETLINK };
            if (bind(fd, (sockaddr*)&addr, (uint)sizeof(SockaddrNl)) != 0) throw new NetlinkException("bind(AF_NETLINK)", errno);
            socklen_t len = (uint)sizeof(SockaddrNl);
            if (getsockname(fd, (sockaddr*)&addr, &len) != 0) throw new NetlinkException("getsockname(AF_NETLINK)", errno);
            return new NetlinkSocket(fd, addr.Pid);
        }
        catch
        {
            close(fd);
            throw;
        }
    }

    private static int CreateFd(int protocol)
    {
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
        if (fd < 0) throw new NetlinkException($"socket(AF_NETLINK, SOCK_RAW, {protocol})", errno);
        return fd;
    }

    private static void Configure(int fd)
    {
        int one = 1;
        // Best effort: extended ACK messages and capped ACKs (error replies do not echo the whole request).
        setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(int));
        setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(int));
        // Large buffers so big dumps and error bursts from batches are not dropped (FORCE works as root).
        int rcv = 4 * 1024 * 1024;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(int)) != 0)
        {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(int));
        }
        int snd = 1024 * 1024;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(int)) != 0)
        {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(int));
        }
        var tv = new Timeval { Seconds = (long)ReceiveTimeout.TotalSeconds, Microseconds = ReceiveTimeout.Milliseconds * 1000L };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, (uint)sizeof(Timeval));
    }

    /// <summary>Next sequence number (never 0, which the kernel uses for notifications).</summary>
    public uint NextSequence()
    {
        _seq++;
        if (_seq == 0) _seq = 1;
        return _seq;
    }

    /// <summary>
    /// <paramref name="count"/> consecutive sequence numbers for one batch; returns the first. The range never
    /// wraps through 0 (which the kernel uses for notifications).
    /// </summary>
    public uint ReserveSequences(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        uint first = NextSequence();
        if (unchecked(first + (uint)count - 1) < first)
        {
            _seq = 0;
            first = NextSequence();
        }
        _seq = unchecked(first + (uint)count - 1);
        return first;
    }

    /// <summary>
    /// Sends a transaction (an nfnetlink batch: BEGIN, changes with NLM_F_ACK, END) in ONE sendmsg, as the kernel
    /// needs a batch whole in one buffer, and collects one answer per message of sequence firstSeq..firstSeq+count-1:
    /// index i gets 0 (ACK) or the errno the kernel gave message i, with its extended-ack text. The kernel handles the
    /// whole batch within sendmsg, so every answer is queued when it returns; the buffers are sized for the batch
    /// (SO_SNDBUFFORCE, SO_RCVBUFFORCE) so nothing is refused or dropped. A message without an answer keeps
    /// <c>null</c> (the kernel stopped early, e.g. on ENOMEM, answering the batch's header instead).
    /// </summary>
    public NetlinkError?[] Transact(ReadOnlySpan<byte> batch, uint firstSeq, int count, string operation)
    {
        ThrowIfDisposed();
        // netlink_sendmsg refuses a message longer than sk_sndbuf - 32; an ACK skb costs under 1 KiB of receive buffer.
        // Without CAP_NET_ADMIN the FORCE options fail and the plain ones are capped by net.core.{w,r}mem_max: a batch
        // larger than that is then refused whole (EMSGSIZE), never sent in part.
        int snd = batch.Length + 64 * 1024;
        if (setsockopt(_fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(int)) != 0) setsockopt(_fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(int));
        int rcv = Math.Max(4 * 1024 * 1024, (int)Math.Min(int.MaxValue / 2, (long)count * 1024 + 1024 * 1024));
        if (setsockopt(_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(int)) != 0) setsockopt(_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(int));
        Send(batch, operation);
        var answers = new NetlinkError?[count];
        while (ReceiveNow(operation) is { } messages)
        {
            foreach (var m in messages)
            {
                uint idx = unchecked(m.Sequence - firstSeq);
                if (idx >= (uint)count)
                {
                    if (IsStale(m.Sequence, firstSeq)) continue;
                    throw new NetlinkProtocolException(operation, $"reply with sequence {m.Sequence} outside the batch {firstSeq}..{unchecked(firstSeq + (uint)count - 1)}");
                }
                if (m.Type == NLMSG_ERROR) answers[idx] = NetlinkDecoder.ParseError(m, operation);
                else if (m.Type == NLMSG_OVERRUN) throw new NetlinkException(operation, Errno.ENOBUFS, "NLMSG_OVERRUN: the transaction's outcome is unknown");
            }
        }
        return answers;
    }

    /// <summary>One queued datagram without waiting; null when none is queued.</summary>
    private List<NetlinkMessage>? ReceiveNow(string operation)
    {
        while (true)
        {
            long n = ReceiveDatagram(out var sender);
            if (n < 0)
            {
                int e = (int)-n;
                if (e == Errno.EAGAIN) return null;
                if (e == Errno.ENOBUFS) throw new NetlinkException(operation, e, "receive buffer overrun: answers were lost, the transaction's outcome is unknown");
                throw new NetlinkException(operation + " (recvfrom)", e);
            }
            ThrowIfTruncated(n, operation);
            if (sender != 0) continue;
            return NetlinkDecoder.ParseMessages(_rx.AsSpan(0, (int)n).ToArray(), operation);
        }
    }

    /// <summary>
    /// One recvfrom into the receive buffer without waiting (EINTR retried): the datagram's full length (MSG_TRUNC) and
    /// its sender's port id, or -errno.
    /// </summary>
    private long ReceiveDatagram(out uint sender)
    {
        while (true)
        {
            var from = new SockaddrNl();
            socklen_t fromLen = (uint)sizeof(SockaddrNl);
            long n;
            fixed (byte* p = _rx)
            {
                n = recvfrom(_fd, p, _rx.Length, MSG_TRUNC | MSG_DONTWAIT, (sockaddr*)&from, &fromLen);
            }
            sender = from.Pid;
            if (n >= 0) return n;
            int e = errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    private void ThrowIfTruncated(long length, string operation)
    {
        if (length > _rx.Length) throw new NetlinkProtocolException(operation, $"datagram of {length} bytes truncated to the {_rx.Length}-byte receive buffer");
    }

    /// <summary>Sends one datagram (one or more complete messages) to the kernel.</summary>
    public void Send(ReadOnlySpan<byte> datagram, string operation)
    {
        ThrowIfDisposed();
        var kernel = new SockaddrNl { Family = AF_NETLINK };
        fixed (byte* p = datagram)
        {
            while (true)
            {
                long n = sendto(_fd, p, datagram.Length, 0, (sockaddr*)&kernel, (uint)sizeof(SockaddrNl));
                if (n >= 0)
                {
                    if (n != datagram.Length) throw new NetlinkException(operation + " (sendto)", Errno.EMSGSIZE, $"short send {n}/{datagram.Length}");
                    return;
                }
                int e = errno;
                if (e == Errno.EINTR) continue;
                throw new NetlinkException(operation + " (sendto)", e);
            }
        }
    }

    /// <summary>Receives one datagram and splits it into messages. Messages from other senders than the kernel are dropped.</summary>
    public List<NetlinkMessage> Receive(string operation)
    {
        ThrowIfDisposed();
        while (true)
        {
            var from = new SockaddrNl();
            socklen_t fromLen = (uint)sizeof(SockaddrNl);
            long n;
            fixed (byte* p = _rx)
            {
                n = recvfrom(_fd, p, _rx.Length, MSG_TRUNC, (sockaddr*)&from, &fromLen);
            }
            if (n < 0)
            {
                int e = errno;
                if (e == Errno.EINTR) continue;
                if (e == Errno.EAGAIN) throw new NetlinkException(operation, Errno.ETIMEDOUT, $"no reply within {ReceiveTimeout.TotalSeconds:0} s");
                if (e == Errno.ENOBUFS) throw new NetlinkException(operation, e, "receive buffer overrun: replies were lost");
                throw new NetlinkException(operation + " (recvfrom)", e);
            }
            if (n > _rx.Length)
            {
                throw new NetlinkProtocolException(operation, $"datagram of {n} bytes truncated to the {_rx.Length}-byte receive buffer");
            }
            if (from.Pid != 0) continue; // not from the kernel
            // Copy: the receive buffer is reused by the next call while callers may still hold payload slices.
            var copy = _rx.AsSpan(0, (int)n).ToArray();
            return NetlinkDecoder.ParseMessages(copy, operation);
        }
    }

    /// <summary>
    /// Sends one request message (already built with sequence <paramref name="seq"/>) and collects the reply:
    /// data messages until the ACK (requests built with NLM_F_ACK) or NLMSG_DONE (dumps); see <see cref="Stream"/>.
    /// </summary>
    public List<NetlinkMessage> Request(ReadOnlySpan<byte> message, uint seq, bool dump, string operation)
    {
        var result = new List<NetlinkMessage>();
        Stream(message, seq, operation, m =>
        {
            result.Add(m);
            return true;
        });
        return result;
    }

    /// <summary>
    /// Sends one request message (already built with sequence <paramref name="seq"/>) and passes each data message of
    /// the reply to <paramref name="onData"/> as its datagram arrives, until the ACK (requests built with NLM_F_ACK) or
    /// NLMSG_DONE (dumps), or until <paramref name="onData"/> returns false. Returns true when the reply ended, false
    /// when <paramref name="onData"/> stopped it: the rest of the reply is then left unread, so stop only on a socket
    /// closed afterwards (the kernel ends a dump whose socket goes). A negative ACK, an aborted dump and a message
    /// flagged NLM_F_DUMP_INTR (the table changed during the dump: what was passed so far is not one consistent
    /// view, EINTR, retry) become a <see cref="NetlinkException"/> naming <paramref name="operation"/> and the errno.
    /// Replies to older sequence numbers (left over from an interrupted exchange) are discarded; replies to unknown
    /// newer ones are a protocol error.
    /// </summary>
    public bool Stream(ReadOnlySpan<byte> message, uint seq, string operation, Func<NetlinkMessage, bool> onData)
    {
        ArgumentNullException.ThrowIfNull(onData);
        Send(message, operation);
        while (true)
        {
            foreach (var m in Receive(operation))
            {
                if (m.Sequence != seq)
                {
                    if (IsStale(m.Sequence, seq)) continue;
                    throw new NetlinkProtocolException(operation, $"reply with sequence {m.Sequence}, expected {seq}");
                }
                switch (m.Type)
                {
                    case NLMSG_NOOP:
                        continue;
                    case NLMSG_OVERRUN:
                        throw new NetlinkException(operation, Errno.ENOBUFS, "NLMSG_OVERRUN");
                    case NLMSG_ERROR:
                        var err = NetlinkDecoder.ParseError(m, operation);
                        if (err.Errno != 0) throw new NetlinkException(operation, err.Errno, err.Message);
                        return true; // ACK
                    case NLMSG_DONE:
                        int doneErr = NetlinkDecoder.ParseDoneErrno(m);
                        if (doneErr != 0) throw new NetlinkException(operation, doneErr, "dump aborted");
                        ThrowIfDumpInterrupted(m, operation);
                        return true;
                    default:
                        ThrowIfDumpInterrupted(m, operation);
                        // Requests built by this library carry NLM_F_ACK, so a non-dump reply is followed by an ACK.
                        if (!onData(m)) return false;
                        break;
                }
            }
        }
    }

    private static void ThrowIfDumpInterrupted(NetlinkMessage m, string operation)
    {
        if ((m.Flags & NetlinkMessageFlags.DumpIntr) != 0) throw new NetlinkException(operation, Errno.EINTR, "dump interrupted by a concurrent change; retry");
    }

    /// <summary>
    /// Joins the multicast group <paramref name="group"/> (an RTNLGRP_* of NETLINK_ROUTE, for instance): the kernel then
    /// queues the group's notifications (sequence 0, port 0) on this socket. Subscribe a socket that sends no
    /// requests: <see cref="Request"/> discards messages it does not expect, notifications among them.
    /// </summary>
    public void JoinGroup(int group, string operation)
    {
        ThrowIfDisposed();
        if (setsockopt(_fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(int)) != 0)
        {
            throw new NetlinkException($"{operation} (setsockopt NETLINK_ADD_MEMBERSHIP {group})", errno);
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for a datagram to be queued, reading none: true when one is.</summary>
    public bool WaitReadable(TimeSpan timeout, string operation)
    {
        ThrowIfDisposed();
        var fds = new pollfd { fd = _fd, events = POLLIN };
        var ts = new timespec { tv_sec = (time_t)(long)timeout.TotalSeconds, tv_nsec = (long_t)(timeout.Milliseconds * 1_000_000L) };
        while (true)
        {
            int n = ppoll(&fds, 1, &ts, null);
            if (n >= 0) return n > 0;
            int e = errno;
            if (e == Errno.EINTR) continue;
            throw new NetlinkException(operation + " (ppoll)", e);
        }
    }

    /// <summary>
    /// The notifications of one queued datagram on a subscribed socket (see <see cref="JoinGroup"/>), without waiting:
    /// no messages when none is queued. When the kernel dropped notifications because the receive buffer was full
    /// (ENOBUFS), what is still queued is older than what was lost and is dropped too, and the overrun is reported:
    /// the subscriber reads the state anew (a dump), and every notification read after that is newer than the loss.
    /// </summary>
    public NetlinkNotifications ReceiveNotifications(string operation)
    {
        ThrowIfDisposed();
        var overrun = false;
        while (true)
        {
            long n = ReceiveDatagram(out var sender);
            if (n < 0)
            {
                int e = (int)-n;
                if (e == Errno.ENOBUFS)
                {
                    overrun = true;
                    continue;
                }
                if (e == Errno.EAGAIN) return new NetlinkNotifications([], overrun);
                throw new NetlinkException(operation + " (recvfrom)", e);
            }
            if (overrun || sender != 0) continue;
            ThrowIfTruncated(n, operation);
            return new NetlinkNotifications(NetlinkDecoder.ParseMessages(_rx.AsSpan(0, (int)n).ToArray(), operation), false);
        }
    }

    /// <summary>
    /// Sends a batch: <paramref name="buffer"/> holds complete messages whose sequence numbers are
    /// <paramref name="firstSeq"/>, firstSeq+1, ... in order (offsets in <paramref name="offsets"/>). Only the last
    /// message should carry NLM_F_ACK: the kernel answers the others only when they fail, so one datagram carries
    /// many requests and one ACK closes the batch. Returns the failures (index, errno, ext-ack text).
    /// </summary>
    public List<(int Index, NetlinkError Error)> SendBatch(ReadOnlySpan<byte> buffer, IReadOnlyList<int> offsets, uint firstSeq, string operation)
    {
        int count = offsets.Count;
        var failures = new List<(int, NetlinkError)>();
        if (count == 0) return failures;
        int chunkStart = 0;
        for (int i = 0; i < count; i++)
        {
            int msgEnd = i + 1 < count ? offsets[i + 1] : buffer.Length;
            if (i > chunkStart && msgEnd - offsets[chunkStart] > MaxBatchDatagram)
            {
                Send(buffer[offsets[chunkStart]..offsets[i]], operation);
                chunkStart = i;
            }
        }
        Send(buffer[offsets[chunkStart]..], operation);
        uint lastSeq = unchecked(firstSeq + (uint)count - 1);
        while (true)
        {
            foreach (var m in Receive(operation))
            {
                uint idx = unchecked(m.Sequence - firstSeq);
                if (idx >= (uint)count)
                {
                    if (IsStale(m.Sequence, firstSeq)) continue;
                    throw new NetlinkProtocolException(operation, $"reply with sequence {m.Sequence} outside the batch {firstSeq}..{lastSeq}");
                }
                if (m.Type == NLMSG_ERROR)
                {
                    var err = NetlinkDecoder.ParseError(m, operation);
                    if (err.Errno != 0) failures.Add(((int)idx, err));
                    if (m.Sequence == lastSeq) return failures;
                }
                else if (m.Type == NLMSG_OVERRUN)
                {
                    throw new NetlinkException(operation, Errno.ENOBUFS, "NLMSG_OVERRUN");
                }
                // Data replies to batched requests are ignored.
            }
        }
    }

    /// <summary>Sets the receive buffer to <paramref name="bytes"/> (SO_RCVBUFFORCE, else SO_RCVBUF capped by net.core.rmem_max).</summary>
    public void SetReceiveBuffer(int bytes)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        if (setsockopt(_fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(int)) != 0 && setsockopt(_fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(int)) != 0)
        {
            throw new NetlinkException($"setsockopt(SO_RCVBUF, {bytes})", errno);
        }
    }

    private static bool IsStale(uint got, uint expected) => unchecked((int)(got - expected)) < 0;

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_fd < 0, this);

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) close(fd);
    }
}
