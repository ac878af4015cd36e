using System.Text;
using Mesh.Ipvs.Netlink;
using static Tmds.Linux.LibC;

namespace Mesh.Ipvs;

/// <summary>
/// Reads and writes sysctls through /proc/sys, in the caller's network namespace or another one: /proc/sys/net is
/// per network namespace as seen by the thread that opens the file, at open time, so the file is opened (and read or
/// written) on the thread <see cref="NetworkNamespace.Run{T}"/> moves into the target. Keys are sysctl's dotted names
/// ("net.ipv4.ip_forward"; an interface name with a dot is not supported), checked before any path is built from them.
/// </summary>
public static class Sysctl
{
    /// <summary>The values of <paramref name="keys"/>, trimmed; throws <see cref="IOException"/> naming a key that cannot be read.</summary>
    public static IReadOnlyList<string> Read(string? netnsPath, IReadOnlyList<string> keys)
    {
        var paths = keys.Select(PathOf).ToArray();
        return InNamespace(netnsPath, () => paths.Select((p, i) => ReadFile(p, keys[i])!).ToArray());
    }

    /// <summary>
    /// The values of <paramref name="keys"/>, trimmed, null for a key the kernel does not have (ENOENT: an IPv6 key on a
    /// kernel booted with IPv6 off, an interface's key after it went); any other failure throws as <see cref="Read"/>.
    /// </summary>
    public static IReadOnlyList<string?> ReadPresent(string? netnsPath, IReadOnlyList<string> keys)
    {
        var paths = keys.Select(PathOf).ToArray();
        return InNamespace(netnsPath, () => paths.Select((p, i) => ReadFile(p, keys[i], missingOk: true)).ToArray());
    }

    /// <summary>Writes each (key, value) whose current value differs; returns the keys written.</summary>
    public static IReadOnlyList<string> Ensure(string? netnsPath, IReadOnlyList<(string Key, string Value)> wanted) => Ensure(netnsPath, wanted, missingOk: false);

    /// <summary>As <see cref="Ensure(string?, IReadOnlyList{ValueTuple{string, string}})"/>, skipping the keys the kernel does not have (see <see cref="ReadPresent"/>).</summary>
    public static IReadOnlyList<string> EnsurePresent(string? netnsPath, IReadOnlyList<(string Key, string Value)> wanted) => Ensure(netnsPath, wanted, missingOk: true);

    private static IReadOnlyList<string> Ensure(string? netnsPath, IReadOnlyList<(string Key, string Value)> wanted, bool missingOk)
    {
        var items = wanted.Select(w => (Path: PathOf(w.Key), w.Key, Value: CheckValue(w.Key, w.Value))).ToArray();
        return InNamespace(netnsPath, () =>
        {
            var written = new List<string>();
            foreach (var (path, key, value) in items)
            {
                var current = ReadFile(path, key, missingOk);
                if (current is not null && current != value)
                {
                    WriteFile(path, key, value);
                    written.Add(key);
                }
            }

            return written;
        });
    }

    /// <summary>/proc/sys/a/b/c for "a.b.c": letters, digits, '-', '_' only in each part, so no path can leave /proc/sys.</summary>
    public static string PathOf(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var parts = key.Split('.');
        if (parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            throw new ArgumentException($"'{key}' is not a sysctl name (dot-separated parts of letters, digits, '-' and '_')", nameof(key));
        }

        return "/proc/sys/" + string.Join('/', parts);
    }

    private static string CheckValue(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0 || value.Any(char.IsControl)) throw new ArgumentException($"sysctl {key}: value '{value}' is empty or has control characters", nameof(value));
        return value;
    }

    private static T InNamespace<T>(string? netnsPath, Func<T> work) => netnsPath is null ? work() : NetworkNamespace.Run(netnsPath, work);

    private static unsafe string? ReadFile(string path, string key, bool missingOk = false)
    {
        int fd = LibCExtras.Open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
        {
            var error = errno;
            if (missingOk && error == Errno.ENOENT) return null;
            throw new IOException($"sysctl {key}: cannot open {path}: {Errno.Describe(error)}");
        }

        try
        {
            var buffer = new byte[256];
            int total = 0;
            fixed (byte* p = buffer)
            {
                while (total < buffer.Length)
                {
                    long n = read(fd, p + total, buffer.Length - total);
                    if (n < 0)
                    {
                        if (errno == Errno.EINTR) continue;
                        throw new IOException($"sysctl {key}: cannot read {path}: {Errno.Describe(errno)}");
                    }

                    if (n == 0) break;
                    total += (int)n;
                }
            }

            return Encoding.ASCII.GetString(buffer, 0, total).Trim();
        }
        finally
        {
            close(fd);
        }
    }

    private static unsafe void WriteFile(string path, string key, string value)
    {
        int fd = LibCExtras.Open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) throw new IOException($"sysctl {key}={value}: cannot open {path}: {Errno.Describe(errno)}");
        try
        {
            var bytes = Encoding.ASCII.GetBytes(value + "\n");
            fixed (byte* p = bytes)
            {
                long n;
                do
                {
                    n = write(fd, p, bytes.Length);
                }
                while (n < 0 && errno == Errno.EINTR);
                if (n < 0) throw new IOException($"sysctl {key}={value}: cannot write {path}: {Errno.Describe(errno)}");
                if (n != bytes.Length) throw new IOException($"sysctl {key}={value}: short write to {path} ({n} of {bytes.Length} bytes)");
            }
        }
        finally
        {
            close(fd);
        }
    }
}
