using System.Diagnostics;
using System.Security.Cryptography;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// Issue 9: a task's resolv.conf is written as root, so only below an allowed root, never through a symlink (at the
/// target, at a directory, or at the old fixed <c>.tmp</c> name), never into a FIFO (which hung the sync loop), and
/// the files it must not touch are read back unchanged. Real files, FIFOs and symlinks in a temporary directory.
/// </summary>
public sealed class ConfinedFileTests : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("mesh-confined-").FullName;
    private readonly string _root;
    private readonly string _outside;
    private readonly string _victim;
    private readonly TaskResolvConfWriter _writer;

    public ConfinedFileTests()
    {
        _root = Path.Combine(_base, "root");
        _outside = Path.Combine(_base, "outside");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_outside);
        _victim = Path.Combine(_outside, "victim");
        File.WriteAllText(_victim, "root:secret-hash:19000:0:99999:7:::\n");
        _writer = new TaskResolvConfWriter([_root], "/etc/resolv.conf");
    }

    public void Dispose() => Directory.Delete(_base, recursive: true);

    [Fact]
    public void A_file_outside_every_root_such_as_etc_shadow_is_refused_and_left_alone()
    {
        var before = Hash("/etc/shadow");

        var e = Assert.Throws<TaskRefusedException>(() => _writer.Write("/etc/shadow"));
        Assert.Contains("not under an allowed directory", e.Message, StringComparison.Ordinal);
        Assert.Throws<TaskRefusedException>(() => new TaskResolvConfWriter(["/etc/netns", "/run/mesh/tasks"], "/etc/resolv.conf").Write("/etc/shadow"));
        Assert.Equal(before, Hash("/etc/shadow"));
        Assert.Throws<Mesh.Discovery.Model.ValidationException>(() => _writer.Write(_root + "/../outside/victim"));
        Assert.Equal("root:secret-hash:19000:0:99999:7:::\n", File.ReadAllText(_victim));
    }

    [Fact]
    public void A_good_path_is_written_with_its_directories_and_rewritten_only_when_it_differs()
    {
        var path = Path.Combine(_root, "web.1", "resolv.conf");

        Assert.True(_writer.Write(path));
        Assert.Contains("nameserver 127.0.0.11", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.False(_writer.Write(path));
        Assert.Equal([path], Directory.GetFiles(Path.GetDirectoryName(path)!)); // no temporary file left behind
    }

    [LabFact]
    public async Task A_fifo_is_refused_at_once_instead_of_hanging_and_stays_a_fifo()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "fifo")).FullName;
        var fifo = Path.Combine(dir, "resolv.conf");
        await Shell.CheckedAsync("mkfifo", fifo);

        var clock = Stopwatch.StartNew();
        var write = Task.Run(() => _writer.Write(fifo));
        var finished = await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(20)));

        Assert.Same(write, finished); // before the change: blocked in open(2) until someone wrote to the FIFO
        var e = await Assert.ThrowsAsync<ConfinedFileException>(() => write);
        Assert.Contains("not a regular file", e.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal("fifo", (await Shell.CheckedAsync("stat", "-c", "%F", fifo)).Trim());
        Assert.Throws<ConfinedFileException>(() => ConfinedFile.ReadTrusted(fifo)); // the node's own resolv.conf too
    }

    [Fact]
    public void A_symlink_at_the_target_is_not_followed_and_its_target_is_unchanged()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "link")).FullName;
        var link = Path.Combine(dir, "resolv.conf");
        File.CreateSymbolicLink(link, _victim);

        Assert.Throws<ConfinedFileException>(() => _writer.Write(link));

        Assert.Equal("root:secret-hash:19000:0:99999:7:::\n", File.ReadAllText(_victim));
        Assert.Equal(_victim, new FileInfo(link).LinkTarget);
    }

    [Fact]
    public void A_symlink_planted_at_the_temporary_name_is_not_followed_and_its_target_is_unchanged()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "tmp")).FullName;
        var path = Path.Combine(dir, "resolv.conf");
        File.CreateSymbolicLink(path + ".tmp", _victim);

        Assert.True(_writer.Write(path));

        Assert.Equal("root:secret-hash:19000:0:99999:7:::\n", File.ReadAllText(_victim));
        Assert.Contains("nameserver 127.0.0.11", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Equal(_victim, new FileInfo(path + ".tmp").LinkTarget);
    }

    [Fact]
    public void A_symlinked_directory_below_the_root_is_not_followed()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "escape"), _outside);

        Assert.Throws<ConfinedFileException>(() => _writer.Write(Path.Combine(_root, "escape", "victim")));
        Assert.Throws<ConfinedFileException>(() => _writer.Write(Path.Combine(_root, "escape", "new", "resolv.conf")));

        Assert.Equal("root:secret-hash:19000:0:99999:7:::\n", File.ReadAllText(_victim));
        Assert.False(Directory.Exists(Path.Combine(_outside, "new")));
    }

    [Fact]
    public void Reads_are_bounded()
    {
        var big = Path.Combine(_root, "big");
        File.WriteAllBytes(big, new byte[ConfinedFile.MaxSize + 1]);

        Assert.Throws<ConfinedFileException>(() => ConfinedFile.Read(_root, big));
        Assert.Throws<ConfinedFileException>(() => _writer.Write(big));
        Assert.Null(ConfinedFile.Read(_root, Path.Combine(_root, "missing", "resolv.conf")));
    }

    private static string Hash(string path) => File.Exists(path) ? Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))) : "absent";
}
