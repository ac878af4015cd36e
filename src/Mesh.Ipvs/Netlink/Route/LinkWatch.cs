using static Mesh.Ipvs.Netlink.Route.RouteConstants;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// A NETLINK_ROUTE socket subscribed to the link and namespace-id groups (RTNLGRP_LINK, RTNLGRP_NSID) of the caller's
/// network namespace or of the one at a path: links created, changed and deleted, and namespace ids freed, in the order
/// the kernel made them. It only listens (requests go through a <see cref="RouteHandle"/>): subscribe first, then dump,
/// and every event read after the dump is one the dump may already show, or a newer one. Not thread-safe.
/// </summary>
public sealed class LinkWatch : IDisposable
{
    private readonly NetlinkSocket _socket;
    private readonly string _where;

    private LinkWatch(NetlinkSocket socket, string? netnsPath)
    {
        _socket = socket;
        _where = netnsPath is null ? "" : $" in {netnsPath}";
    }

    public static LinkWatch Open(string? netnsPath = null)
    {
        var socket = NetlinkSocket.Open(NETLINK_ROUTE, netnsPath);
        try
        {
            var watch = new LinkWatch(socket, netnsPath);
            socket.JoinGroup(RTNLGRP_LINK, "RTNLGRP_LINK subscribe" + watch._where);
            socket.JoinGroup(RTNLGRP_NSID, "RTNLGRP_NSID subscribe" + watch._where);
            return watch;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for a notification, reading none: true when one is queued.</summary>
    public bool Wait(TimeSpan timeout) => _socket.WaitReadable(timeout, "RTNLGRP_LINK wait" + _where);

    /// <summary>
    /// The events queued now, in order, without waiting: none when nothing is queued. Overrun: notifications were lost
    /// (the socket's buffer was full), and with them everything queued before; no events are returned then, and the
    /// links are to be read anew: every event read after that is newer than the loss.
    /// </summary>
    public (IReadOnlyList<LinkEvent> Events, bool Overrun) Read()
    {
        string op = "RTNLGRP_LINK notification" + _where;
        var events = new List<LinkEvent>();
        while (true)
        {
            var read = _socket.ReceiveNotifications(op);
            if (read.Overrun)
            {
                return ([], true);
            }

            if (read.Messages.Count == 0)
            {
                return (events, false);
            }

            foreach (var m in read.Messages)
            {
                if (RouteCodec.ParseLinkEvent(m, op) is { } e)
                {
                    events.Add(e);
                }
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}
