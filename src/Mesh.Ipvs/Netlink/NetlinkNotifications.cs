namespace Mesh.Ipvs.Netlink;

/// <summary>
/// What one read of a subscribed netlink socket found (<see cref="NetlinkSocket.ReceiveNotifications"/>): the messages of
/// one datagram (none when nothing was queued), or an overrun: notifications were lost, and the older ones still queued
/// were dropped with them, so the reader reads the state anew.
/// </summary>
public readonly record struct NetlinkNotifications(IReadOnlyList<NetlinkMessage> Messages, bool Overrun);
