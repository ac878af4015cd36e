using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ipvs.Netlink;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Mesh.Ingress.Kernel;

/// <summary>A file the daemon refuses to read or write (outside its root, a symlink, not a regular file, too big).</summary>
public sealed class ConfinedFileException(string message) : IOException(message);

/// <summary>
/// Small text files the daemon writes as root on behalf of someone else (a task's resolv.conf), confined to a
/// directory the administrator allowed. Below that root nothing is followed: every component is opened with
/// O_NOFOLLOW relative to the one before (openat), so a symlink anywhere below the root is refused rather than
/// resolved; the file must be a regular file (opened O_NONBLOCK, so a FIFO cannot hang the daemon, then fstat'ed);
/// reads are bounded; a write goes to a fresh temporary file created O_CREAT|O_EXCL|O_NOFOLLOW beside the target
/// (nothing already there, link or not, is ever opened for writing), fsync'ed, renamed over the target and the
/// directory fsync'ed. The root itself is trusted (the administrator's setting) and is created when missing.
/// </summary>
public static class ConfinedFile
{
    /// <summary>Larger than any resolv.conf; a bigger file is refused rather than read.</summary>
    public const int MaxSize = 64 * 1024;

    private const ushort DirectoryMode = 0x1ED; // 0755
    private const ushort FileMode = 0x1A4;      // 0644

    /// <summary>The file's text, or null when it does not exist.</summary>
    public static string? Read(string root, string path)
    {
        var (directory, name) = OpenParent(root, path, create: false);
        if (directory < 0)
        {
            return null;
        }

        try
        {
            return ReadAt(directory, name, path, O_NOFOLLOW);
        }
        finally
        {
            close(directory);
        }
    }

    /// <summary>Replaces the file's content atomically, creating missing directories below the root.</summary>
    public static void Write(string root, string path, string content)
    {
        var bytes = Encoding.UTF8.GetBytes(content);
        if (bytes.Length > MaxSize)
        {
            throw new ConfinedFileException($"{path}: {bytes.Length.ToString(CultureInfo.InvariantCulture)} bytes is more than {MaxSize.ToString(CultureInfo.InvariantCulture)}");
        }

        var (directory, name) = OpenParent(root, path, create: true);
        try
        {
            RefuseAnythingButARegularFile(directory, name, path);
            var temporary = $".{name}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.mesh-tmp";
            int fd = LibCExtras.OpenAt(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, FileMode);
            if (fd < 0)
            {
                throw Failed("create a temporary file beside", path, errno);
            }

            var renamed = false;
            try
            {
                WriteAll(fd, bytes, path);
                if (fsync(fd) != 0)
                {
                    throw Failed("fsync", path, errno);
                }

                close(fd);
                fd = -1;
                if (LibCExtras.RenameAt(directory, temporary, directory, name) != 0)
                {
                    throw Failed("rename a temporary file over", path, errno);
                }

                renamed = true;
                _ = fsync(directory); // the rename itself survives a crash
            }
            finally
            {
                if (fd >= 0)
                {
                    close(fd);
                }

                if (!renamed)
                {
                    _ = LibCExtras.UnlinkAt(directory, temporary, 0);
                }
            }
        }
        finally
        {
            close(directory);
        }
    }

    /// <summary>
    /// A file the administrator named (the node's own /etc/resolv.conf, often a symlink to systemd-resolved's): its
    /// symlinks are followed, but it must be a regular file (no FIFO, no device) and it is read bounded.
    /// Null when it does not exist.
    /// </summary>
    public static string? ReadTrusted(string path)
    {
        var text = ReadAt(AT_FDCWD, path, path, 0);
        return text;
    }

    private static unsafe string? ReadAt(int directory, string name, string path, int extraFlags)
    {
        int fd = LibCExtras.OpenAt(directory, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | extraFlags, 0);
        if (fd < 0)
        {
            int error = errno;
            return error == Errno.ENOENT ? null : throw Failed("open", path, error);
        }

        try
        {
            statx st;
            if (LibCExtras.Statx(fd, "", AT_EMPTY_PATH, STATX_TYPE, &st) != 0)
            {
                throw Failed("stat", path, errno);
            }

            if ((st.stx_mode & S_IFMT) != S_IFREG)
            {
                throw new ConfinedFileException($"{path} is not a regular file");
            }

            var buffer = new byte[MaxSize + 1];
            var total = 0;
            fixed (byte* p = buffer)
            {
                while (total < buffer.Length)
                {
                    var n = read(fd, p + total, buffer.Length - total);
                    if (n < 0)
                    {
                        throw Failed("read", path, errno);
                    }

                    if (n == 0)
                    {
                        break;
                    }

                    total += (int)n;
                }
            }

            return total > MaxSize
                ? throw new ConfinedFileException($"{path} is larger than {MaxSize.ToString(CultureInfo.InvariantCulture)} bytes")
                : Encoding.UTF8.GetString(buffer, 0, total);
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>
    /// The directory holding <paramref name="path"/>, opened component by component below <paramref name="root"/>
    /// with O_NOFOLLOW; -1 when a component is missing and <paramref name="create"/> is false.
    /// </summary>
    private static (int Directory, string Name) OpenParent(string root, string path, bool create)
    {
        if (!TaskPaths.IsUnder(path, root))
        {
            throw new ConfinedFileException($"{path} is not under {root}");
        }

        var components = path[(root.Length + 1)..].Split('/');
        if (components.Any(c => c is "" or "." or ".."))
        {
            throw new ConfinedFileException($"{path} is not in canonical form");
        }

        if (create)
        {
            Directory.CreateDirectory(root);
        }

        int directory = LibCExtras.Open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (directory < 0)
        {
            int error = errno;
            return error == Errno.ENOENT && !create ? (-1, "") : throw Failed("open", root, error);
        }

        foreach (var component in components[..^1])
        {
            int next = LibCExtras.OpenAt(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            if (next < 0 && errno == Errno.ENOENT && create)
            {
                if (LibCExtras.MkdirAt(directory, component, DirectoryMode) != 0 && errno != Errno.EEXIST)
                {
                    int mkdirErrno = errno;
                    close(directory);
                    throw Failed($"create directory '{component}' for", path, mkdirErrno);
                }

                next = LibCExtras.OpenAt(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            }

            if (next < 0)
            {
                int error = errno;
                close(directory);
                if (error == Errno.ENOENT && !create)
                {
                    return (-1, "");
                }

                throw error is Errno.ELOOP or Errno.ENOTDIR
                    ? new ConfinedFileException($"{path}: '{component}' is a symbolic link or not a directory")
                    : Failed("open", path, error);
            }

            close(directory);
            directory = next;
        }

        return (directory, components[^1]);
    }

    /// <summary>What is at the target now, if anything, must be a regular file: a rename would replace a symlink,
    /// FIFO or device silently, which would hide that someone put it there.</summary>
    private static unsafe void RefuseAnythingButARegularFile(int directory, string name, string path)
    {
        statx st;
        if (LibCExtras.Statx(directory, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &st) != 0)
        {
            int error = errno;
            if (error == Errno.ENOENT)
            {
                return;
            }

            throw Failed("stat", path, error);
        }

        if ((st.stx_mode & S_IFMT) != S_IFREG)
        {
            throw new ConfinedFileException($"{path} exists and is not a regular file (a symbolic link, FIFO, directory or device)");
        }
    }

    private static unsafe void WriteAll(int fd, byte[] bytes, string path)
    {
        fixed (byte* p = bytes)
        {
            var written = 0;
            while (written < bytes.Length)
            {
                var n = write(fd, p + written, bytes.Length - written);
                if (n < 0)
                {
                    throw Failed("write", path, errno);
                }

                written += (int)n;
            }
        }
    }

    private static ConfinedFileException Failed(string what, string path, int errno) => errno switch
    {
        Errno.ELOOP => new ConfinedFileException($"{path} is a symbolic link"),
        _ => new ConfinedFileException($"cannot {what} {path}: {Errno.Describe(errno)}"),
    };
}
