using System.Diagnostics;
using System.Net.Sockets;

namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>
/// A real <c>mesh daemon</c> process for the API fuzz run: embedded store, private state dir, log file and unix
/// socket under a temp dir. It runs in a user and network namespace of its own (<c>unshare --user --map-root-user
/// --net</c>), started as <c>nobody</c> when the test is root: root inside, so iptables detection and the API work
/// as in production, but with no power outside — nothing a fuzzed request makes it do (a task's netns path of
/// /proc/1/ns/net, a resolv.conf path of /etc/shadow) can reach the machine. Its reconciler finds no overlay
/// bridge there and just retries; the API and the store, which are what is fuzzed, are the real ones.
/// </summary>
internal sealed class FuzzDaemon : IAsyncDisposable
{
    /// <summary>The daemon's own node name: kept out of the fuzzer's dictionaries so no fuzzed task lands on it.</summary>
    public const string NodeName = "fuzzd-self";

    private readonly Process _process;
    private readonly System.Text.StringBuilder _console = new();

    private FuzzDaemon(string directory, Process process)
    {
        Root = directory;
        _process = process;
    }

    public string Root { get; }

    public string SocketPath => Path.Combine(Root, "run", "mesh.sock");

    public string LogPath => Path.Combine(Root, "daemon.log");

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static async Task<FuzzDaemon> StartAsync(TimeSpan timeout)
    {
        var directory = Directory.CreateTempSubdirectory("mesh-fuzz-").FullName;
        Directory.CreateDirectory(Path.Combine(directory, "run"));
        Directory.CreateDirectory(Path.Combine(directory, "state"));
        var mesh = Path.Combine(AppContext.BaseDirectory, "mesh");
        string[] daemonArgs =
        [
            "daemon", "--node", NodeName, "--advertise-addr", "198.18.0.250",
            "--dataplane", "nftables",
            "--ingress-sandbox", $"mesh-fuzz-{Environment.ProcessId}", // throw-away names; nothing is created there anyway
            "--ingress-bridge", "mesh-fuzz-br",
            "--api", $"unix://{Path.Combine(directory, "run", "mesh.sock")}",
            "--state-dir", Path.Combine(directory, "state"),
            "--log-file", Path.Combine(directory, "daemon.log"),
            "--dns-upstream", "127.0.0.53",
        ];

        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var prefix = new List<string>();
        if (Environment.IsPrivilegedProcess)
        {
            // The temp dir belongs to nobody, the daemon runs as nobody (root only inside its own user namespace).
            foreach (var path in Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).Prepend(directory))
            {
                File.SetUnixFileMode(path, (UnixFileMode)0b111_111_101); // 0775
            }

            Chown(directory);
            prefix.AddRange(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        }

        prefix.AddRange(["unshare", "--user", "--map-root-user", "--net", "--", mesh]);
        start.FileName = prefix[0];
        foreach (var a in prefix.Skip(1))
        {
            start.ArgumentList.Add(a);
        }

        foreach (var a in daemonArgs)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["HOME"] = directory;
        start.Environment["DOTNET_CLI_HOME"] = directory;
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + mesh);
        var daemon = new FuzzDaemon(directory, process);
        process.OutputDataReceived += (_, e) => daemon.Console(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Console(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await daemon.WaitReadyAsync(timeout);
        }
        catch
        {
            await daemon.DisposeAsync(); // a daemon that never came up leaves no process or temp dir behind
            throw;
        }

        return daemon;
    }

    /// <summary>Ready when the socket answers <c>/v1/info</c> and the daemon has registered its own node.</summary>
    private async Task WaitReadyAsync(TimeSpan timeout)
    {
        using var http = Mesh.Ingress.Cli.ApiClientFactory.Create("unix://" + SocketPath, TimeSpan.FromSeconds(2));
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"mesh daemon exited with {_process.ExitCode} before it was ready:\n{Log()}");
            }

            try
            {
                var state = await http.GetStringAsync(new Uri("/v1/state", UriKind.Relative));
                if (state.Contains($"\"{NodeName}\"", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or SocketException or TaskCanceledException or IOException)
            {
                // not listening yet
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"mesh daemon not ready after {timeout}:\n{Log()}");
    }

    /// <summary>The console (what the daemon says before its log file exists, e.g. a usage error) and the log's tail.</summary>
    public string Log()
    {
        string console;
        lock (_console)
        {
            console = _console.ToString();
        }

        try
        {
            var text = File.ReadAllText(LogPath);
            return console + (text.Length > 4000 ? text[^4000..] : text);
        }
        catch (IOException e)
        {
            return console + $"(no log file: {e.Message})";
        }
    }

    private void Console(string? line)
    {
        lock (_console)
        {
            if (line is not null && _console.Length < 8000)
            {
                _console.AppendLine(line);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(Root, recursive: true);
    }

    private static void Chown(string directory)
    {
        using var chown = Process.Start("chown", ["-R", "65534:65534", directory]) ?? throw new InvalidOperationException("chown");
        chown.WaitForExit();
        if (chown.ExitCode != 0)
        {
            throw new InvalidOperationException($"chown -R nobody {directory} failed ({chown.ExitCode})");
        }
    }
}
