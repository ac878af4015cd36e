using System.Globalization;
using System.Runtime.InteropServices;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// The lab is machine-wide (fixed namespace names), so every user of it — these scenarios, the lead's
/// end-to-end tests, a person typing <c>flock /tmp/mesh-lab.lock mesh lab up</c> — takes flock(2) on
/// <see cref="LockPath"/> first. When an ancestor process already holds it (we were started under
/// <c>flock /tmp/mesh-lab.lock ...</c>), taking it again would deadlock, so that case is detected from
/// /proc/locks and the lock is considered ours.
/// </summary>
public sealed partial class LabLock : IDisposable
{
    public const string LockPath = "/tmp/mesh-lab.lock";
    private const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    private const int O_RDONLY = 0, O_CREAT = 0x40, O_CLOEXEC = 0x80000;
    private int _fd;

    private LabLock(int fd) => _fd = fd;

    /// <summary>True when the lock was inherited from an ancestor rather than taken here.</summary>
    public bool Inherited => _fd < 0;

    // libc directly: .NET's FileStream takes its own flock (LOCK_SH unless FileShare.None) and throws when it is busy.
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    public static async Task<LabLock> AcquireAsync(TextWriter log, CancellationToken ct)
    {
        if (HeldByAncestor() is { } holder)
        {
            await log.WriteLineAsync($"lab lock: {LockPath} is held by ancestor process {holder}: running under it").ConfigureAwait(false);
            return new LabLock(-1);
        }

        var fd = open(LockPath, O_RDONLY | O_CREAT | O_CLOEXEC, 0x1B6);
        if (fd < 0) throw new IOException($"cannot open {LockPath}: errno {Marshal.GetLastPInvokeError()}");
        var said = false;
        while (flock(fd, LOCK_EX | LOCK_NB) != 0)
        {
            if (!said)
            {
                await log.WriteLineAsync($"lab lock: waiting for {LockPath} (another lab user holds it)").ConfigureAwait(false);
                said = true;
            }
            try
            {
                await Task.Delay(200, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                close(fd);
                throw;
            }
        }
        return new LabLock(fd);
    }

    /// <summary>The pid of an ancestor that holds a flock on <see cref="LockPath"/> (it has the file open and /proc/locks names it).</summary>
    internal static int? HeldByAncestor()
    {
        try
        {
            var holders = File.ReadAllLines("/proc/locks")
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length > 4 && f[1] == "FLOCK")
                .Select(f => int.TryParse(f[4], NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : -1)
                .ToHashSet();
            for (var pid = ParentOf(Environment.ProcessId); pid > 1; pid = ParentOf(pid))
            {
                if (holders.Contains(pid) && HasOpen(pid, LockPath)) return pid;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    private static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[1], CultureInfo.InvariantCulture);
    }

    private static bool HasOpen(int pid, string path)
    {
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == path) return true;
            }
            catch (IOException) { }
        }
        return false;
    }

    public void Dispose()
    {
        if (_fd < 0) return;
        flock(_fd, LOCK_UN);
        close(_fd);
        _fd = -1;
    }
}
