using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>A [Fact] that is skipped, with a clear message, when a required program is not on PATH.</summary>
public sealed class RequiresToolsFactAttribute : FactAttribute
{
    public RequiresToolsFactAttribute(params string[] tools)
    {
        var missing = tools.Where(t => DnsTestTools.Which(t) is null).ToArray();
        if (missing.Length > 0)
            Skip = $"needs {string.Join(", ", missing)} on PATH (Debian: apt-get install bind9-dnsutils dnsmasq-base)";
    }
}

/// <summary>A [Fact] that needs root and the `ip` tool (network namespaces).</summary>
public sealed class RequiresRootFactAttribute : FactAttribute
{
    public RequiresRootFactAttribute(params string[] tools)
    {
        if (Environment.UserName != "root" && !string.Equals(Environment.GetEnvironmentVariable("USER"), "root", StringComparison.Ordinal))
            Skip = "needs root (network namespaces)";
        var missing = tools.Where(t => DnsTestTools.Which(t) is null).ToArray();
        if (missing.Length > 0) Skip = $"needs {string.Join(", ", missing)} on PATH";
    }
}

internal static class DnsTestTools
{
    public static string? Which(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':').Concat(["/usr/sbin", "/sbin"]))
        {
            var p = Path.Combine(dir, tool);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);

    /// <summary>Runs a program with an argument array (no shell), killing it after <paramref name="timeout"/>.</summary>
    public static async Task<Result> RunAsync(string program, IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(Which(program) ?? program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
        return new Result(p.ExitCode, await stdout, await stderr, sw.Elapsed);
    }

    public static Task<Result> DigAsync(int port, params string[] args) =>
        RunAsync("dig", new[] { "@127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "+tries=1", "+time=5" }.Concat(args), TimeSpan.FromSeconds(20));

    /// <summary>A port free for both UDP and TCP on 127.0.0.1 right now.</summary>
    public static int FreePort()
    {
        for (int i = 0; i < 50; i++)
        {
            using var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            u.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)u.LocalEndPoint!).Port;
            try
            {
                using var t = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                t.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException("no free port");
    }

    /// <summary>
    /// dnsmasq on 127.0.0.1:port (UDP+TCP) as a fake upstream. Disposing kills exactly this process.
    /// </summary>
    public sealed class Dnsmasq : IDisposable
    {
        private readonly Process _process;
        public int Port { get; }

        private Dnsmasq(Process p, int port) { _process = p; Port = port; }

        public static async Task<Dnsmasq> StartAsync(params string[] extra)
        {
            int port = FreePort();
            var psi = new ProcessStartInfo(Which("dnsmasq")!) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { "--no-daemon", "--conf-file=/dev/null", $"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                         "--no-resolv", "--no-hosts", "--pid-file", "--user=root" }.Concat(extra))
                psi.ArgumentList.Add(a);
            var p = Process.Start(psi)!;
            _ = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEndAsync();
            // Wait until it answers TCP.
            for (int i = 0; i < 100; i++)
            {
                if (p.HasExited) throw new InvalidOperationException($"dnsmasq exited with {p.ExitCode}");
                try
                {
                    using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                    return new Dnsmasq(p, port);
                }
                catch (SocketException)
                {
                    await Task.Delay(50);
                }
            }
            p.Kill();
            throw new InvalidOperationException("dnsmasq did not start");
        }

        public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited) _process.Kill();
                _process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            _process.Dispose();
        }
    }
}
