using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Mesh.Ipvs.Netlink;

/// <summary>
/// struct sockaddr_nl from /usr/include/linux/netlink.h (Tmds.LibC has no netlink address):
/// <c>__kernel_sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups;</c> (12 bytes).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockaddrNl
{
    public sa_family_t Family;
    public ushort Pad;
    public uint Pid;
    public uint Groups;
}

/// <summary>struct timeval for SO_RCVTIMEO (Tmds.LibC has timespec only). x86_64 / arm64 LP64 layout: two longs.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timeval
{
    public long Seconds;
    public long Microseconds;
}

/// <summary>
/// What Mesh adds to Tmds.LibC, which provides every other libc entry point, constant and struct Mesh uses
/// (socket, bind, sendto, setns, unshare, openat, statx...): renameat, mount and flock, which Tmds.LibC 0.5.0 lacks, and
/// string front ends for the path-taking calls (Tmds.LibC takes <c>byte*</c>): a path is passed as NUL-terminated
/// UTF-8, and a path with a NUL inside is refused instead of being cut short at it (which would open a different file).
/// Errors are reported as Tmds.LibC's are: -1 and <see cref="LibC.errno"/>.
/// </summary>
internal static unsafe partial class LibCExtras
{
    /// <summary>&lt;linux/nsfs.h&gt;: NS_GET_NSTYPE = _IO(NSIO 0xb7, 0x3): the CLONE_NEW* type of an nsfs file, ENOTTY on anything else.</summary>
    public const int NS_GET_NSTYPE = 0xb703;

    public static int Open(string path, int flags)
    {
        fixed (byte* p = Utf8Path(path))
        {
            return open(p, flags, 0);
        }
    }

    public static int OpenAt(int dirfd, string path, int flags, ushort mode)
    {
        fixed (byte* p = Utf8Path(path))
        {
            return openat(dirfd, p, flags, mode);
        }
    }

    public static int MkdirAt(int dirfd, string path, ushort mode)
    {
        fixed (byte* p = Utf8Path(path))
        {
            return mkdirat(dirfd, p, mode);
        }
    }

    public static int UnlinkAt(int dirfd, string path, int flags)
    {
        fixed (byte* p = Utf8Path(path))
        {
            return unlinkat(dirfd, p, flags);
        }
    }

    public static int Statx(int dirfd, string path, int flags, uint mask, statx* buffer)
    {
        fixed (byte* p = Utf8Path(path))
        {
            return statx(dirfd, p, flags, mask, buffer);
        }
    }

    public static int Chown(string path, uint owner, uint group)
    {
        fixed (byte* p = Utf8Path(path))
        {
            return chown(p, owner, group);
        }
    }

    public static int RenameAt(int olddirfd, string oldpath, int newdirfd, string newpath)
    {
        fixed (byte* from = Utf8Path(oldpath))
        fixed (byte* to = Utf8Path(newpath))
        {
            return renameat(olddirfd, from, newdirfd, to);
        }
    }

    // <sys/mount.h>, <sys/file.h>: for creating a named network namespace as iproute2 does.
    public const ulong MS_BIND = 4096;
    public const ulong MS_REC = 16384;
    public const ulong MS_SHARED = 1 << 20;
    public const int LOCK_EX = 2;
    public const int LOCK_UN = 8;

    /// <summary>mount(2) without data: a bind mount or a propagation change.</summary>
    public static int Mount(string source, string target, string fsType, ulong flags)
    {
        fixed (byte* s = Utf8Path(source))
        fixed (byte* t = Utf8Path(target))
        fixed (byte* f = Utf8Path(fsType))
        {
            return mount(s, t, f, flags, null);
        }
    }

    public static int Flock(int fd, int operation) => flock(fd, operation);

    /// <summary>The path as NUL-terminated UTF-8; a NUL inside it is an error, not the end of a shorter path.</summary>
    private static byte[] Utf8Path(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"path contains a NUL character: {path.Replace("\0", "\\0", StringComparison.Ordinal)}", nameof(path));
        }

        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }

    // mount(2), flock(2): not in Tmds.LibC 0.5.0. Same conventions as its imports.
    [LibraryImport("libc.so.6", EntryPoint = "mount", SetLastError = true)]
    private static partial int mount(byte* source, byte* target, byte* fstype, ulong flags, void* data);

    [LibraryImport("libc.so.6", EntryPoint = "flock", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    // renameat(2): not in Tmds.LibC 0.5.0. Same conventions as its imports: libc.so.6, errno kept for LibC.errno.
    [LibraryImport("libc.so.6", EntryPoint = "renameat", SetLastError = true)]
    private static partial int renameat(int olddirfd, byte* oldpath, int newdirfd, byte* newpath);
}
