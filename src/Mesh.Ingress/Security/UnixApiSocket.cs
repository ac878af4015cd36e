using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mesh.Ipvs.Netlink;
using Tmds.Linux;

namespace Mesh.Ingress.Security;

/// <summary>
/// The API's unix socket, created so that it is never reachable with a wider mode than 0660: bind(2) creates the
/// socket file with the process umask, so it is bound inside a fresh 0700 directory nobody else can enter, given
/// mode 0660 (and the <c>--api-group</c>) there, and only then renamed onto its path. rename(2) is atomic and
/// replaces a stale socket (or anything else, a symlink included, without following it). Kestrel calls listen()
/// after this returns. No process-wide umask is changed, so no other thread's files are affected.
/// </summary>
public static partial class UnixApiSocket
{
    public const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    /// <summary>Returns a bound, not yet listening socket at <paramref name="path"/>, mode 0660, group <paramref name="groupId"/> if given.</summary>
    public static Socket Bind(string path, uint? groupId)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        // Same directory as the target, so the rename never crosses a filesystem; short, as sun_path holds 108 bytes.
        var staging = Path.Combine(directory, ".mesh-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)));
        Directory.CreateDirectory(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            var bound = Path.Combine(staging, "s");
            socket.Bind(new UnixDomainSocketEndPoint(bound));
            File.SetUnixFileMode(bound, Mode);
            if (groupId is { } gid && LibCExtras.Chown(bound, uint.MaxValue, gid) != 0)
            {
                throw new IOException($"chown of {path} to group {gid} failed: errno {LibC.errno}");
            }

            File.Move(bound, path, overwrite: true);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>The group id of <c>--api-group</c> (a name, or a number); errors name the option.</summary>
    public static uint ResolveGroup(string option, string group)
    {
        if (uint.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
        {
            return gid;
        }

        var entry = GetGroupByName(group);
        if (entry == IntPtr.Zero)
        {
            throw new ArgumentException($"{option} '{group}': no such group");
        }

        // struct group { char *gr_name; char *gr_passwd; gid_t gr_gid; char **gr_mem; } (LP64: gr_gid at offset 16)
        return (uint)Marshal.ReadInt32(entry, 2 * IntPtr.Size);
    }

    // getgrnam(3) goes through NSS (files, LDAP, sssd...); Tmds.LibC 0.5.0 does not bind it.
    [LibraryImport("libc", EntryPoint = "getgrnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetGroupByName(string name);
}
