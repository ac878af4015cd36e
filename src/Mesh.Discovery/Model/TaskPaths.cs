using System.Globalization;

namespace Mesh.Discovery.Model;

/// <summary>
/// The syntax of the two paths a task names on its node: its network namespace and the resolv.conf the node writes
/// for it. Any node's API can check the syntax; only the task's own node can check what the path really is (an
/// nsfs file, not the host's namespace, a regular file under an allowed root), so the node checks again before it
/// touches anything. Both paths must be spelled canonically (absolute; no <c>.</c>, <c>..</c>, <c>//</c> or trailing
/// <c>/</c>; letters, digits and <c>. _ - + @ : ,</c> only) so that the prefix rules below mean what they say.
/// </summary>
public static class TaskPaths
{
    /// <summary>Longer than any runtime's namespace path or resolv.conf path; keeps the state and every log line small.</summary>
    public const int MaxLength = 512;

    /// <summary>Directories whose entries are network namespace bind mounts: iproute2's (<c>ip netns add</c>), which
    /// CNI runtimes (podman, containerd) use as well.</summary>
    public static readonly IReadOnlyList<string> NetnsDirectories = ["/run/netns", "/var/run/netns"];

    /// <summary>Where a node writes task resolv.conf files unless told otherwise (<c>--resolv-conf-root</c>):
    /// iproute2's per-namespace <c>/etc/netns/NAME/</c> (which <c>ip netns exec</c> bind-mounts) and Mesh's own.</summary>
    public static readonly IReadOnlyList<string> DefaultResolvConfRoots = ["/etc/netns", "/run/mesh/tasks"];

    /// <summary>
    /// <c>/run/netns/NAME</c>, <c>/var/run/netns/NAME</c> or <c>/proc/PID/ns/net</c> with PID &gt; 1 (PID 1 is the
    /// host's init: its namespace is the host's).
    /// </summary>
    public static string NetnsPath(string field, string? value)
    {
        var path = Canonical(field, value);
        foreach (var directory in NetnsDirectories)
        {
            if (IsUnder(path, directory) && !path.AsSpan(directory.Length + 1).Contains('/'))
            {
                return path;
            }
        }

        var parts = path.Split('/');
        if (parts is ["", "proc", var pid, "ns", "net"] && pid.Length is > 0 and <= 10 && pid[0] != '0' && pid.All(char.IsAsciiDigit)
            && long.Parse(pid, CultureInfo.InvariantCulture) is > 1 and <= int.MaxValue)
        {
            return path;
        }

        throw new ValidationException(field, $"'{Printable(path)}' is not a network namespace path: use /run/netns/NAME, /var/run/netns/NAME or /proc/PID/ns/net (PID > 1)");
    }

    /// <summary>A canonical absolute file path; which roots it may lie under is the task's node's to say (<see cref="UnderRoot"/>).</summary>
    public static string ResolvConfPath(string field, string? value) => Canonical(field, value);

    /// <summary><paramref name="path"/> (canonical) lies strictly below one of <paramref name="roots"/> (canonical directories).</summary>
    public static string UnderRoot(string field, string path, IReadOnlyList<string> roots) =>
        roots.Any(root => IsUnder(path, root))
            ? path
            : throw new ValidationException(field, $"'{Printable(path)}' is not under an allowed directory ({string.Join(", ", roots)})");

    /// <summary>A directory allowed as a resolv.conf root: canonical and not <c>/</c> itself.</summary>
    public static string Root(string field, string? value)
    {
        var root = Canonical(field, value);
        return root == "/" ? throw new ValidationException(field, "'/' would allow every file on the node") : root;
    }

    public static bool IsUnder(string path, string directory) =>
        path.Length > directory.Length + 1 && path.StartsWith(directory, StringComparison.Ordinal) && path[directory.Length] == '/';

    private static string Canonical(string field, string? value)
    {
        if (string.IsNullOrEmpty(value) || value[0] != '/')
        {
            throw new ValidationException(field, $"'{Printable(value ?? "")}' is not an absolute path");
        }

        if (value.Length > MaxLength)
        {
            throw new ValidationException(field, $"is longer than {MaxLength.ToString(CultureInfo.InvariantCulture)} characters");
        }

        if (!value.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or '@' or ':' or ','))
        {
            throw new ValidationException(field, $"'{Printable(value)}' may contain only letters, digits, '/' and . _ - + @ : ,");
        }

        if (value == "/")
        {
            return value;
        }

        if (value.EndsWith('/') || value.Split('/').Skip(1).Any(c => c is "" or "." or ".."))
        {
            throw new ValidationException(field, $"'{Printable(value)}' is not in canonical form (no '//', '.', '..' or trailing '/')");
        }

        return value;
    }

    /// <summary>At most 80 characters, control characters shown as '?': the value goes into error messages and logs.</summary>
    private static string Printable(string value)
    {
        var cut = value.Length > 80 ? value[..80] + "…" : value;
        return new string(cut.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
