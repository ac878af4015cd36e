using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Ipvs.Netlink;
using Tmds.Linux;
using Microsoft.Extensions.Logging;

namespace Mesh.Discovery.Store;

/// <summary>
/// The embedded store's file, <c>cluster-state.json</c> in the state directory (created 0700), and its previous
/// version <c>cluster-state.json.last-good</c>, both mode 0600 (the state names every task's namespace and address).
/// A save writes <c>.tmp</c> (created 0600, fsynced), renames the current file to last-good, renames <c>.tmp</c> over
/// the current one and fsyncs the directory, so a crash at any point leaves a complete current file or a complete
/// last-good one, and a rename that made it to the disk stays there. A load that finds the current file unreadable
/// says so loudly, keeps it aside as <c>.corrupt</c> and starts from last-good; it never starts empty over a state it
/// could not read (that would wipe the cluster at the next write).
/// </summary>
public sealed partial class StateFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly ILogger _logger;

    /// <summary>Whether the current file is one this process wrote or read successfully (only such a file becomes last-good).</summary>
    private bool _currentIsGood;

    public StateFile(string directory, ILogger logger)
    {
        _logger = logger;
        if (!System.IO.Directory.Exists(directory))
        {
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Directory = directory;
        Path = System.IO.Path.Combine(directory, "cluster-state.json");
    }

    public string Directory { get; }

    public string Path { get; }

    public string LastGoodPath => Path + ".last-good";

    public string TemporaryPath => Path + ".tmp";

    public string CorruptPath => Path + ".corrupt";

    /// <summary>The persisted state: the current file, else (loudly) last-good; null when there is neither (a new cluster).</summary>
    public ClusterState? Load()
    {
        string? problem = null;
        if (File.Exists(Path))
        {
            try
            {
                var state = Read(Path);
                _currentIsGood = true;
                TightenMode(Path);
                TightenMode(LastGoodPath);
                return state;
            }
            catch (Exception e) when (e is IOException or JsonException or InvalidDataException or UnauthorizedAccessException or NotSupportedException)
            {
                problem = e.Message;
            }
        }

        if (!File.Exists(LastGoodPath))
        {
            if (problem is not null)
            {
                throw new InvalidDataException($"{Path} is unreadable ({problem}) and there is no {LastGoodPath}: refusing to start with an empty cluster state; restore the file or move it away to start a new cluster");
            }

            return null;
        }

        ClusterState lastGood;
        try
        {
            lastGood = Read(LastGoodPath);
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidDataException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new InvalidDataException($"neither {Path} ({problem ?? "missing"}) nor {LastGoodPath} ({e.Message}) is readable: refusing to start with an empty cluster state", e);
        }

        if (problem is not null)
        {
            // Keep the unreadable file for inspection, and out of the way: the next save must not make it last-good.
            File.Move(Path, CorruptPath, overwrite: true);
            LogCurrentUnreadable(Path, Validate.Printable(problem), LastGoodPath, lastGood.Revision, CorruptPath);
        }
        else
        {
            LogCurrentMissing(Path, LastGoodPath, lastGood.Revision); // a crash between the two renames of a save
        }

        TightenMode(LastGoodPath);
        return lastGood;
    }

    public void Save(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (File.Exists(TemporaryPath))
        {
            File.Delete(TemporaryPath); // left by a crash; created anew below so its mode is ours (and not a planted link)
        }

        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            UnixCreateMode = OwnerOnly,
        };
        using (var stream = new FileStream(TemporaryPath, options))
        {
            JsonSerializer.Serialize(stream, state, MeshJson.Options);
            stream.Flush(flushToDisk: true);
        }

        if (_currentIsGood && File.Exists(Path))
        {
            File.Move(Path, LastGoodPath, overwrite: true);
        }

        File.Move(TemporaryPath, Path, overwrite: true);
        _currentIsGood = true;
        SyncDirectory(Directory);
    }

    private static ClusterState Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var state = JsonSerializer.Deserialize<ClusterState>(bytes, StoredObjectValidator.ReadOptions)
            ?? throw new InvalidDataException($"{path} holds no cluster state");
        return state.WithSharedNames();
    }

    /// <summary>Files written by versions that did not set the mode were world-readable.</summary>
    private static void TightenMode(string path)
    {
        if (File.Exists(path) && (File.GetUnixFileMode(path) & ~OwnerOnly) != 0)
        {
            File.SetUnixFileMode(path, OwnerOnly);
        }
    }

    /// <summary>fsync(2) of the directory: a rename is durable only once the directory entry is on disk.</summary>
    private static void SyncDirectory(string directory)
    {
        var fd = LibCExtras.Open(directory, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"open {directory}: errno {LibC.errno}");
        }

        try
        {
            if (LibC.fsync(fd) != 0)
            {
                throw new IOException($"fsync {directory}: errno {LibC.errno}");
            }
        }
        finally
        {
            _ = LibC.close(fd);
        }
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "STATE FILE {Path} IS UNREADABLE ({Problem}): loaded the last-good copy {LastGood} (revision {Revision}) instead; the unreadable file is kept as {Corrupt}. Changes after that revision are lost: check what the cluster is missing")]
    private partial void LogCurrentUnreadable(string path, string problem, string lastGood, long revision, string corrupt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "State file {Path} is missing: loaded the last-good copy {LastGood} (revision {Revision}); the daemon stopped in the middle of a save")]
    private partial void LogCurrentMissing(string path, string lastGood, long revision);
}
