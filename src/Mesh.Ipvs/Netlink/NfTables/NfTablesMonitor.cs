using static Mesh.Ipvs.Netlink.NfTables.NfTablesConstants;

namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// A NETLINK_NETFILTER socket subscribed to NFNLGRP_NFTABLES in one network namespace (what <c>nft monitor</c> reads):
/// every transaction committed there after <see cref="Open"/> is queued on it, its object messages then NFT_MSG_NEWGEN,
/// until the receive buffer is full. It is read without waiting (<see cref="Drain"/>). Like any socket it holds its
/// namespace alive.
/// </summary>
public sealed class NfTablesMonitor : IDisposable
{
    private readonly NetlinkSocket _socket;

    private NfTablesMonitor(NetlinkSocket socket, string? netnsPath)
    {
        _socket = socket;
        NetworkNamespacePath = netnsPath;
    }

    public string? NetworkNamespacePath { get; }

    /// <summary>Subscribes in the namespace at <paramref name="netnsPath"/> (null: the caller's) with a receive buffer of <paramref name="receiveBuffer"/> bytes.</summary>
    public static NfTablesMonitor Open(string? netnsPath, int receiveBuffer)
    {
        var socket = NetlinkSocket.Open(NETLINK_NETFILTER, netnsPath);
        try
        {
            socket.SetReceiveBuffer(receiveBuffer);
            socket.JoinGroup(NFNLGRP_NFTABLES, "NFNLGRP_NFTABLES subscribe" + (netnsPath is null ? "" : " in " + netnsPath));
            return new NfTablesMonitor(socket, netnsPath);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Every message queued now, in the order the kernel sent them, without waiting; <c>Overrun</c> when the kernel
    /// dropped some because the buffer was full (what was dropped cannot be known).
    /// </summary>
    public (List<NetlinkMessage> Messages, bool Overrun) Drain()
    {
        var operation = "nf_tables notifications" + (NetworkNamespacePath is null ? "" : " in " + NetworkNamespacePath);
        var messages = new List<NetlinkMessage>();
        var overrun = false;
        while (_socket.ReceiveNotifications(operation) is var read && (read.Messages.Count > 0 || read.Overrun))
        {
            if (read.Overrun)
            {
                overrun = true;
                messages.Clear(); // older than what was lost: the reader reads the table anew in any case
            }

            messages.AddRange(read.Messages);
        }

        return (messages, overrun);
    }

    public void Dispose() => _socket.Dispose();
}
