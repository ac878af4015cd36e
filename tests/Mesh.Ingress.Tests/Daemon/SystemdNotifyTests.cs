using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Daemon;

namespace Mesh.Ingress.Tests.Daemon;

/// <summary>
/// The systemd protocol end to end: a real <c>mesh daemon</c> with <c>NOTIFY_SOCKET</c> pointing at a datagram socket
/// this test listens on, and <c>WATCHDOG_USEC</c> set, as systemd starts a <c>Type=notify</c> unit. The daemon runs in
/// a network namespace of its own (unshare --net) that at first lacks the ingress bridge, so its syncs fail: it must
/// not say READY then, yet its watchdog pings go on (the loop is alive and retrying). Once the test creates the bridge
/// the next sync converges and READY follows; SIGTERM brings STOPPING. Its parent is a shell named <c>systemd</c>, which
/// is how Microsoft.Extensions.Hosting.Systemd recognises systemd: its lifetime, which says READY at host start, is
/// then registered, and the daemon must have taken it out again.
/// </summary>
public sealed class SystemdNotifyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-notify-").FullName;
    private readonly string _sandbox = $"mesh-sd{Environment.ProcessId}";
    private readonly string _bridge = $"mesh-sdb{Environment.ProcessId}";
    private readonly ConcurrentQueue<(TimeSpan At, string Message)> _messages = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private Process? _parent;
    private Process? _daemon;

    public void Dispose()
    {
        if (_parent is { HasExited: false })
        {
            _parent.Kill(entireProcessTree: true);
            _parent.WaitForExit(10_000);
        }

        _parent?.Dispose();
        if (_daemon is { HasExited: false })
        {
            _daemon.Kill();
            _daemon.WaitForExit(10_000);
        }

        _daemon?.Dispose();

        // The daemon made its ingress sandbox as a named namespace (/run/netns is the machine's): remove it.
        using (var del = Process.Start("ip", ["netns", "del", _sandbox]))
        {
            del.WaitForExit(10_000);
        }

        Directory.Delete(_dir, recursive: true);
    }

    [IsolatedDaemonFact]
    public async Task Ready_only_after_the_first_converged_sync_watchdog_while_alive_stopping_on_sigterm()
    {
        var notifyPath = Path.Combine(_dir, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        using var stop = new CancellationTokenSource();
        var listening = ListenAsync(notify, stop.Token);

        var socket = Path.Combine(_dir, "api.sock");
        var systemd = Path.Combine(_dir, "systemd");
        File.CreateSymbolicLink(systemd, "/bin/sh");
        var info = new ProcessStartInfo(systemd) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])
        [
            "-c", "\"$@\"; exit $?", "sh", // stays the parent (no exec), the command arrives as positional parameters
            "/usr/bin/unshare", "--net", "--", "dotnet", typeof(DaemonHost).Assembly.Location, "daemon", "--node", "sd-self", "--advertise-addr", "198.18.0.250",
            "--api", $"unix://{socket}", "--state-dir", _dir, "--log-file", Path.Combine(_dir, "daemon.log"), "--dataplane", "nftables",
            "--ingress-sandbox", _sandbox, "--ingress-bridge", _bridge, "--dns-upstream", "127.0.0.53",
        ])
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["NOTIFY_SOCKET"] = notifyPath;
        info.Environment["WATCHDOG_USEC"] = "1000000"; // pings every 0.5 s
        _parent = Process.Start(info)!;
        _daemon = await ChildOfAsync(_parent); // unshare execs the daemon: same pid
        Assert.Equal("systemd", (await File.ReadAllTextAsync($"/proc/{_parent.Id}/comm")).Trim());

        // Up and serving, but not converged: its advertise address is on no interface yet (the overlays' VXLAN devices
        // send from it), so every sync fails and is retried.
        using var http = ApiClientFactory.Create($"unix://{socket}", TimeSpan.FromSeconds(5));
        await WaitForAsync(async () => (await InfoAsync(http)) is { } i && i.TryGetProperty("lastError", out var e) && e.GetString() is { Length: > 0 }, TimeSpan.FromSeconds(60), "the daemon's first failing sync");
        await Task.Delay(TimeSpan.FromSeconds(2));
        var beforeBridge = _clock.Elapsed;
        Assert.DoesNotContain(_messages, m => m.Message.Contains("READY=1", StringComparison.Ordinal));
        Assert.Contains(_messages, m => m.Message.StartsWith("STATUS=Starting", StringComparison.Ordinal));
        Assert.True(_messages.Count(m => m.Message.Contains("WATCHDOG=1", StringComparison.Ordinal)) >= 3, $"watchdog pings while retrying: {Messages()}");
        Assert.Equal(-1, (await InfoAsync(http))!.Value.GetProperty("appliedRevision").GetInt64());

        // The underlay appears (a veth: this kernel has no dummy links); the daemon then makes its overlays and converges.
        await RunAsync("nsenter", $"--net=/proc/{_daemon.Id}/ns/net", "ip", "link", "add", "sd0", "type", "veth", "peer", "name", "sd1");
        await RunAsync("nsenter", $"--net=/proc/{_daemon.Id}/ns/net", "ip", "addr", "add", "198.18.0.250/24", "dev", "sd0");
        await RunAsync("nsenter", $"--net=/proc/{_daemon.Id}/ns/net", "ip", "link", "set", "sd0", "up");
        await WaitForAsync(() => Task.FromResult(_messages.Any(m => m.Message.Contains("READY=1", StringComparison.Ordinal))), TimeSpan.FromSeconds(30), "READY=1 after the underlay appeared");
        var ready = _messages.First(m => m.Message.Contains("READY=1", StringComparison.Ordinal));
        Assert.True(ready.At > beforeBridge);
        Assert.Contains("applied revision", ready.Message, StringComparison.Ordinal);
        Assert.True((await InfoAsync(http))!.Value.GetProperty("appliedRevision").GetInt64() >= 0);

        // The loop stays alive: pings keep coming at half the timeout.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var pingsAfterReady = _messages.Count(m => m.At > ready.At && m.Message.Contains("WATCHDOG=1", StringComparison.Ordinal));
        Assert.True(pingsAfterReady >= 3, $"{pingsAfterReady} watchdog pings in 2 s after READY: {Messages()}");

        await RunAsync("kill", "-TERM", _daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(_parent.WaitForExit(30_000), "the daemon did not stop on SIGTERM");
        Assert.Equal(0, _parent.ExitCode); // the shell exits with the daemon's status
        await Task.Delay(200);
        Assert.Contains(_messages, m => m.Message.StartsWith("STOPPING=1", StringComparison.Ordinal));
        await stop.CancelAsync();
        await listening;
    }

    private static async Task<Process> ChildOfAsync(Process parent)
    {
        for (var i = 0; i < 100; i++)
        {
            var children = await File.ReadAllTextAsync($"/proc/{parent.Id}/task/{parent.Id}/children");
            if (children.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var child])
            {
                return Process.GetProcessById(int.Parse(child, System.Globalization.CultureInfo.InvariantCulture));
            }

            await Task.Delay(50);
        }

        throw new InvalidOperationException("the daemon did not start under its parent");
    }

    private async Task ListenAsync(Socket socket, CancellationToken ct)
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
                _messages.Enqueue((_clock.Elapsed, Encoding.UTF8.GetString(buffer, 0, n)));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task<JsonElement?> InfoAsync(HttpClient http)
    {
        try
        {
            return JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/info", UriKind.Relative))).RootElement.Clone();
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or TaskCanceledException or IOException)
        {
            return null;
        }
    }

    private async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (_daemon!.HasExited || clock.Elapsed > timeout)
            {
                Assert.Fail($"no {what} within {timeout} (daemon exited: {_daemon.HasExited}); messages: {Messages()}; log: {Log()}");
            }

            await Task.Delay(100);
        }
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(file, args);
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {process.ExitCode}");
    }

    private string Messages() => string.Join(" | ", _messages.Select(m => $"{m.At.TotalSeconds:F1}s {m.Message.ReplaceLineEndings("\\n")}"));

    private string Log()
    {
        var path = Path.Combine(_dir, "daemon.log");
        var text = File.Exists(path) ? File.ReadAllText(path) : "(none)";
        return text.Length > 3000 ? text[^3000..] : text;
    }
}
