using System.Runtime.InteropServices;

namespace Mesh.Ipvs.Netlink;

/// <summary>
/// struct sockaddr_nl from /usr/include/linux/netlink.h:
/// <c>__kernel_sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups;</c> (12 bytes).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockaddrNl
{
    public ushort Family;
    public ushort Pad;
    public uint Pid;
    public uint Groups;
}

/// <summary>struct timeval (x86_64 / arm64 LP64 layout: two longs).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timeval
{
    public long Seconds;
    public long Microseconds;
}

/// <summary>
/// The few libc entry points the netlink layer needs. .NET's <see cref="System.Net.Sockets.Socket"/> cannot open
/// AF_NETLINK (EAFNOSUPPORT), so the socket is driven through libc directly.
/// </summary>
internal static unsafe partial class LibC
{
    private const string Lib = "libc";

    // <bits/socket.h>, <linux/socket.h>
    public const int AF_NETLINK = 16;
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_RCVTIMEO = 20; // SO_RCVTIMEO_OLD on 64-bit
    public const int SO_SNDBUFFORCE = 32;
    public const int SO_RCVBUFFORCE = 33;
    public const int MSG_PEEK = 0x2;
    public const int MSG_TRUNC = 0x20;

    // <fcntl.h>
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;

    // <sched.h>
    public const int CLONE_NEWNET = 0x40000000;

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, SockaddrNl* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, SockaddrNl* addr, uint* addrlen);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int optname, void* optval, uint optlen);

    [LibraryImport(Lib, EntryPoint = "sendto", SetLastError = true)]
    public static partial nint SendTo(int fd, byte* buf, nuint len, int flags, SockaddrNl* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "recvfrom", SetLastError = true)]
    public static partial nint RecvFrom(int fd, byte* buf, nuint len, int flags, SockaddrNl* addr, uint* addrlen);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int nstype);

    public static int LastError => Marshal.GetLastPInvokeError();
}
