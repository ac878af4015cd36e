using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Daemon;

namespace Mesh.Ingress.Tests.Daemon;

/// <summary>Needs root (unshare) to run a real daemon in a network namespace of its own; skipped, saying why, elsewhere.</summary>
public sealed class IsolatedDaemonFactAttribute : FactAttribute
{
    public IsolatedDaemonFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess || !File.Exists("/usr/bin/unshare"))
        {
            Skip = "needs root and unshare(1): the daemon runs in a throw-away network namespace";
        }
    }
}

/// <summary>
/// The attack from issue 9: a cluster filled with fake nodes, then a real daemon starts. It must not crash: it stays
/// up, its API answers, and it says why it cannot register. The daemon runs as a real process in an anonymous network
/// namespace of its own (unshare --net), so nothing it might touch is the machine's; while refused it touches nothing.
/// </summary>
public sealed class DaemonRegistrationProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-full-").FullName;
    private Process? _daemon;

    public void Dispose()
    {
        if (_daemon is { HasExited: false })
        {
            _daemon.Kill();
            _daemon.WaitForExit(10_000);
        }

        _daemon?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [IsolatedDaemonFact]
    public async Task A_daemon_refused_by_a_full_cluster_stays_up_and_its_api_says_why()
    {
        var state = ClusterState.Empty;
        for (var i = 0; i < Limits.MaxNodes; i++)
        {
            state = StateTransitions.RegisterNode(state, new NodeSpec { Name = $"fake{i}", AdvertiseAddress = $"192.0.{i / 250}.{(i % 250) + 1}" }).State;
        }

        await File.WriteAllTextAsync(Path.Combine(_dir, "cluster-state.json"), JsonSerializer.Serialize(state with { Revision = Limits.MaxNodes }, MeshJson.Options));
        var socket = Path.Combine(_dir, "api.sock");
        var info = new ProcessStartInfo("/usr/bin/unshare") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])
        [
            "--net", "--", "dotnet", typeof(DaemonHost).Assembly.Location, "daemon", "--node", "real", "--advertise-addr", "198.18.0.250",
            "--api", $"unix://{socket}", "--state-dir", _dir, "--log-file", Path.Combine(_dir, "daemon.log"), "--dataplane", "nftables",
            "--ingress-sandbox", $"mesh-t{Environment.ProcessId}", "--ingress-bridge", $"mesh-tb{Environment.ProcessId}",
        ])
        {
            info.ArgumentList.Add(arg);
        }

        _daemon = Process.Start(info)!;
        using var http = ApiClientFactory.Create($"unix://{socket}", TimeSpan.FromSeconds(20));
        NodeInfo? seen = null;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (_daemon.HasExited)
            {
                Assert.Fail($"the daemon exited ({_daemon.ExitCode}): {Log()} {await _daemon.StandardError.ReadToEndAsync()}");
            }

            try
            {
                seen = await http.GetFromJsonAsync<NodeInfo>("v1/info", MeshJson.Options);
                if (seen?.LastError is not null)
                {
                    break;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // not listening yet (or starting slowly on a busy machine)
            }

            await Task.Delay(200);
        }

        Assert.NotNull(seen?.LastError);
        Assert.Contains("node real could not register", seen!.LastError, StringComparison.Ordinal);
        Assert.Contains($"the most it may have ({Limits.MaxNodes})", seen.LastError, StringComparison.Ordinal);

        await Task.Delay(2_000); // several refused attempts later: still up, still answering
        if (_daemon.HasExited)
        {
            Assert.Fail($"the daemon exited ({_daemon.ExitCode}): {Log()}");
        }

        var nodes = await http.GetFromJsonAsync<ClusterNode[]>("v1/nodes", MeshJson.Options);
        Assert.Equal(Limits.MaxNodes, nodes!.Length);
        using var refused = await http.PostAsJsonAsync("v1/nodes", new NodeSpec { Name = "another", AdvertiseAddress = "198.18.0.251" }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("The store refused to register node real", Log(), StringComparison.Ordinal);
    }

    private string Log()
    {
        var path = Path.Combine(_dir, "daemon.log");
        return File.Exists(path) ? File.ReadAllText(path) : "(no log)";
    }
}
