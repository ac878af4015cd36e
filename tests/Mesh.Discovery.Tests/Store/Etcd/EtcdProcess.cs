using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Security;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>
/// A real single-member etcd (Debian's etcd-server) on loopback: random ports, a temporary data directory,
/// stoppable and restartable on the same ports and data. Killed on dispose.
/// </summary>
public sealed class EtcdProcess : IDisposable
{
    public const string MissingReason = "etcd is not installed: apt-get install etcd-server (the etcd tests need a real etcd binary on PATH)";

    private readonly string _dataDir = Directory.CreateTempSubdirectory("mesh-etcd-").FullName;
    private readonly List<string> _log = [];
    private Process? _process;

    private readonly string _name;
    private readonly EtcdServerTls? _tls;
    private string? _initialCluster;
    private string _token = $"mesh-test-{Guid.NewGuid():N}";

    /// <param name="tls">Serve clients over https and require a client certificate from its CA (etcd's <c>--client-cert-auth</c>).</param>
    public EtcdProcess(string name = "mesh-test", EtcdServerTls? tls = null)
    {
        _name = name;
        _tls = tls;
        ClientPort = FreePort();
        PeerPort = FreePort();
    }

    /// <summary>Three members on loopback forming one cluster; started together (a member waits for its peers).</summary>
    public static async Task<EtcdProcess[]> StartClusterAsync(int members = 3)
    {
        var nodes = Enumerable.Range(1, members).Select(i => new EtcdProcess($"m{i}")).ToArray();
        var cluster = string.Join(",", nodes.Select(n => $"{n._name}=http://127.0.0.1:{n.PeerPort}"));
        foreach (var n in nodes)
        {
            n._initialCluster = cluster;
            n._token = nodes[0]._token;
        }

        try
        {
            await Task.WhenAll(nodes.Select(n => n.StartAsync()));
            return nodes;
        }
        catch
        {
            foreach (var n in nodes)
            {
                n.Dispose();
            }

            throw;
        }
    }

    /// <summary>The etcd binary ($MESH_ETCD, else on PATH, else /usr/bin/etcd), or null when etcd is not installed.</summary>
    public static string? BinaryPath { get; } = Find();

    public int ClientPort { get; }

    public int PeerPort { get; }

    public Uri ClientUrl => new($"{(_tls is null ? "http" : "https")}://127.0.0.1:{ClientPort}/");

    public string ConnectionString => $"etcd://127.0.0.1:{ClientPort}";

    public static async Task<EtcdProcess> StartNewAsync(EtcdServerTls? tls = null)
    {
        var etcd = new EtcdProcess(tls: tls);
        try
        {
            await etcd.StartAsync();
            return etcd;
        }
        catch
        {
            etcd.Dispose();
            throw;
        }
    }

    public async Task StartAsync()
    {
        var binary = BinaryPath ?? throw new InvalidOperationException(MissingReason);
        var info = new ProcessStartInfo(binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        string[] args =
        [
            "--name", _name,
            "--data-dir", _dataDir,
            "--listen-client-urls", ClientUrl.ToString().TrimEnd('/'),
            "--advertise-client-urls", ClientUrl.ToString().TrimEnd('/'),
            "--listen-peer-urls", $"http://127.0.0.1:{PeerPort}",
            "--initial-advertise-peer-urls", $"http://127.0.0.1:{PeerPort}",
            "--initial-cluster", _initialCluster ?? $"{_name}=http://127.0.0.1:{PeerPort}",
            "--initial-cluster-token", _token,
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
        ];
        if (_tls is not null)
        {
            args = [.. args, "--cert-file", _tls.CertFile, "--key-file", _tls.KeyFile, "--trusted-ca-file", _tls.CaFile, "--client-cert-auth"];
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("etcd did not start");
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _process = process;

        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = _tls?.HealthClient.ToSslOptions() ?? new() }) { Timeout = TimeSpan.FromSeconds(1) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"etcd exited with {process.ExitCode}:\n{Log}");
            }

            try
            {
                var health = await http.GetStringAsync(new Uri(ClientUrl, "health"));
                if (health.Contains("\"health\":\"true\"", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // not listening yet
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"etcd on {ClientUrl} did not become healthy in 20 s:\n{Log}");
    }

    /// <summary>Kills etcd (SIGKILL: no goodbye to clients) and waits until it is gone.</summary>
    public void Stop()
    {
        if (_process is { } p)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
            }

            p.WaitForExit();
            p.Dispose();
            _process = null;
        }
    }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log.TakeLast(40));
            }
        }
    }

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.Add(line);
            if (_log.Count > 200)
            {
                _log.RemoveAt(0);
            }
        }
    }

    private static string? Find()
    {
        // MESH_ETCD=/path/to/etcd picks a binary; MESH_ETCD=none runs the suite as if etcd were missing.
        var chosen = Environment.GetEnvironmentVariable("MESH_ETCD");
        if (!string.IsNullOrEmpty(chosen))
        {
            return chosen == "none" ? null : chosen;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin"))
        {
            var candidate = Path.Combine(dir, "etcd");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>etcd's server certificate and key, the CA it trusts for client certificates, and a client that can pass its health check.</summary>
public sealed record EtcdServerTls(string CertFile, string KeyFile, string CaFile, ClientTls HealthClient);

/// <summary>One etcd for a whole test class; tests isolate themselves with their own key prefix.</summary>
public sealed class EtcdFixture : IAsyncLifetime
{
    public EtcdProcess? Etcd { get; private set; }

    public async Task InitializeAsync()
    {
        if (EtcdProcess.BinaryPath is not null)
        {
            Etcd = await EtcdProcess.StartNewAsync();
        }
    }

    public Task DisposeAsync()
    {
        Etcd?.Dispose();
        return Task.CompletedTask;
    }
}
