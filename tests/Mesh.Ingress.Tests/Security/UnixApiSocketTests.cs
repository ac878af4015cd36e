using System.Collections.Concurrent;
using System.Net.Sockets;
using Mesh.Ingress.Security;
using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Security;

/// <summary>The API's unix socket: 0660, owned by root (or the --api-group), and never visible at its path with any other mode.</summary>
public sealed class UnixApiSocketTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-sock-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(string Owner, string Group, string Mode, string Type)> StatAsync(string path)
    {
        var fields = (await Shell.CheckedAsync("stat", "-c", "%u %g %a %F", path)).Trim().Split(' ', 4);
        return (fields[0], fields[1], fields[2], fields[3]);
    }

    [Fact]
    public async Task The_socket_is_0660_owned_by_the_daemon_and_the_api_group_and_accepts_after_listen()
    {
        var path = Path.Combine(_dir, "mesh.sock");
        using (var socket = UnixApiSocket.Bind(path, groupId: null))
        {
            var stat = await StatAsync(path);
            Assert.Equal(("660", "socket"), (stat.Mode, stat.Type));
            if (Environment.IsPrivilegedProcess)
            {
                Assert.Equal(("0", "0"), (stat.Owner, stat.Group)); // root:root when the daemon runs as root
            }

            socket.Listen();
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
        }

        Assert.Equal(0u, UnixApiSocket.ResolveGroup("--api-group", "root"));
        Assert.Equal(4242u, UnixApiSocket.ResolveGroup("--api-group", "4242"));
        var missing = Assert.Throws<ArgumentException>(() => UnixApiSocket.ResolveGroup("--api-group", "no-such-group-here"));
        Assert.StartsWith("--api-group 'no-such-group-here'", missing.Message, StringComparison.Ordinal);

        if (Environment.IsPrivilegedProcess)
        {
            var grouped = Path.Combine(_dir, "grouped.sock");
            using var socket = UnixApiSocket.Bind(grouped, groupId: 4242);
            var stat = await StatAsync(grouped);
            Assert.Equal(("0", "4242", "660"), (stat.Owner, stat.Group, stat.Mode));
        }
    }

    [Fact]
    public void No_moment_exists_when_the_path_holds_the_socket_with_another_mode()
    {
        // A watcher stats the path as fast as it can while the socket is created (and replaced) again and again,
        // under a umask that would make a freshly bound socket world-accessible (0777): the way it was done before
        // (bind with the umask, chmod later) is seen here within a few rounds.
        var path = Path.Combine(_dir, "watched.sock");
        var seen = new ConcurrentDictionary<UnixFileMode, int>();
        using var stop = new CancellationTokenSource();
        var observations = 0L;
        var watcher = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    seen.AddOrUpdate(File.GetUnixFileMode(path), 1, (_, n) => n + 1);
                    Interlocked.Increment(ref observations);
                }
                catch (FileNotFoundException)
                {
                    // not there yet
                }
            }
        });
        var old = Tmds.Linux.LibC.umask(0);
        try
        {
            watcher.Start();
            for (var round = 0; round < 300; round++)
            {
                using var socket = UnixApiSocket.Bind(path, groupId: null);
                socket.Listen();
            }
        }
        finally
        {
            Tmds.Linux.LibC.umask(old);
            stop.Cancel();
            watcher.Join();
        }

        Assert.True(Interlocked.Read(ref observations) > 100, $"the watcher saw the path only {observations} times");
        Assert.Equal([UnixApiSocket.Mode], seen.Keys);
        Assert.Empty(Directory.GetDirectories(_dir)); // no staging directory left behind
    }

    [Fact]
    public async Task A_symlink_or_stale_file_at_the_path_is_replaced_not_followed()
    {
        var target = Path.Combine(_dir, "target");
        await File.WriteAllTextAsync(target, "keep");
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        var path = Path.Combine(_dir, "mesh.sock");
        File.CreateSymbolicLink(path, target);

        using var socket = UnixApiSocket.Bind(path, groupId: null);

        Assert.Equal(("660", "socket"), ((await StatAsync(path)).Mode, (await StatAsync(path)).Type));
        Assert.Equal("keep", await File.ReadAllTextAsync(target));
        Assert.Equal("606", (await StatAsync(target)).Mode);
    }
}
