using System.Net;

namespace Mesh.Ipvs.Netlink.Conntrack;

/// <summary>One direction of a tracked connection (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY): addresses, protocol, ports.</summary>
/// <param name="Protocol">The IP protocol number (6 TCP, 17 UDP, ...).</param>
/// <param name="SourcePort">0 for a protocol without ports.</param>
public sealed record ConntrackTuple(IPAddress Source, IPAddress Destination, byte Protocol, ushort SourcePort, ushort DestinationPort)
{
    public override string ToString() => $"{Source}:{SourcePort} -> {Destination}:{DestinationPort} proto {Protocol}";
}

/// <summary>
/// A conntrack entry as ctnetlink dumps it, the parts Mesh reads: the original tuple (as the first packet came), the
/// reply tuple (as replies come: after a DNAT its source is the translated destination), the status bits and, for
/// TCP, the tracker's state.
/// </summary>
public sealed record ConntrackEntry(ConntrackTuple Original, ConntrackTuple Reply, ConntrackStatus Status)
{
    /// <summary>The TCP tracker's state (CTA_PROTOINFO_TCP_STATE); null for other protocols.</summary>
    public TcpConntrackState? TcpState { get; init; }

    /// <summary>The kernel's ID of the entry (CTA_ID; 0 when absent).</summary>
    public uint Id { get; init; }

    /// <summary>
    /// Where a destination NAT sent the connection (the reply tuple's source, which is what replies come from); null
    /// for an entry without DNAT.
    /// </summary>
    public IPEndPoint? DnatDestination => (Status & ConntrackStatus.DestinationNat) != 0 ? new IPEndPoint(Reply.Source, Reply.SourcePort) : null;
}

/// <summary>enum ip_conntrack_status (nf_conntrack_common.h), the bits Mesh names.</summary>
[Flags]
public enum ConntrackStatus : uint
{
    None = 0,
    Expected = 1 << 0,
    SeenReply = 1 << 1,
    Assured = 1 << 2,
    Confirmed = 1 << 3,
    SourceNat = 1 << 4,
    DestinationNat = 1 << 5,
    SourceNatDone = 1 << 7,
    DestinationNatDone = 1 << 8,
    Dying = 1 << 9,
}

/// <summary>enum tcp_conntrack (nf_conntrack_tcp.h).</summary>
public enum TcpConntrackState : byte
{
    None = 0,
    SynSent = 1,
    SynReceived = 2,
    Established = 3,
    FinWait = 4,
    CloseWait = 5,
    LastAck = 6,
    TimeWait = 7,
    Close = 8,
    SynSent2 = 9,
}
