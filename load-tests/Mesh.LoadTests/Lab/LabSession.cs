using System.Diagnostics;
using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Reporting;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// A lab this scenario brought up (under the lab lock) and tears down when disposed. Uses Mesh.Ingress's
/// own <see cref="LabCluster"/> in-process; its daemons and task servers are started as
/// <c>dotnet mesh.dll ...</c> from this program's output directory.
/// </summary>
public sealed class LabSession : IAsyncDisposable
{
    public static readonly string[] LabTools = ["ip", "nft", "iptables", "conntrack", "curl", "flock"];
    private readonly LabLock _lock;
    private readonly TextWriter _log;

    private LabSession(LabLock labLock, TextWriter log, int replicas, string store, int leaseTtlSeconds, int etcdMembers, string runtime)
    {
        Plan = new LabPlan(3, replicas, "auto", store, etcdMembers, leaseTtlSeconds, runtime);
        _lock = labLock;
        _log = log;
        Runner = new ProcessCommandRunner();
        Cluster = new LabCluster(Runner, log);
    }

    public ProcessCommandRunner Runner { get; }
    public LabCluster Cluster { get; }
    public LabPlan Plan { get; }
    public IClusterStore Store { get; } = ApiClientFactory.Store(LabPlan.Api(LabPlan.NodeName(1)));

    public static async Task<LabSession> UpAsync(TextWriter log, CancellationToken ct, int replicas = 3, string store = "embedded", int leaseTtlSeconds = 10,
        int etcdMembers = 1, string runtime = LabPlan.NetnsRuntime)
    {
        if (!Environment.IsPrivilegedProcess) throw new InvalidOperationException("lab scenarios build network namespaces: run as root");
        var labLock = await LabLock.AcquireAsync(log, ct).ConfigureAwait(false);
        var session = new LabSession(labLock, log, replicas, store, leaseTtlSeconds, etcdMembers, runtime);
        try
        {
            var sw = Stopwatch.StartNew();
            // A lab someone left behind (we hold the lock, so nobody is using it) may have another shape: start clean.
            await session.Cluster.DownAsync(ct).ConfigureAwait(false);
            await session.Cluster.UpAsync(session.Plan, ct).ConfigureAwait(false);
            await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"lab up in {sw.Elapsed.TotalSeconds:0.0} s")).ConfigureAwait(false);
            return session;
        }
        catch
        {
            await session.KeepLogsAsync("lab up failed").ConfigureAwait(false);
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// lab down deletes the daemons' logs with their directory: copies them to the results folder first, for a
    /// post-mortem (always after a failed lab up; after every run with MESH_KEEP_LAB_LOGS=1).
    /// </summary>
    private async Task KeepLogsAsync(string why)
    {
        try
        {
            var keep = Path.Combine(Cli.Runner.DefaultResultsRoot(), $"lab-logs-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
            Directory.CreateDirectory(keep);
            foreach (var f in Directory.Exists(LabPlan.StateDirectory) ? Directory.GetFiles(LabPlan.StateDirectory, "*.log") : [])
                File.Copy(f, Path.Combine(keep, Path.GetFileName(f)), overwrite: true);
            await _log.WriteLineAsync($"{why}: daemon logs kept in {Path.GetFullPath(keep)}").ConfigureAwait(false);
        }
        catch (IOException) { }
    }

    public async ValueTask DisposeAsync()
    {
        if (Environment.GetEnvironmentVariable("MESH_KEEP_LAB_LOGS") == "1")
        {
            await KeepLogsAsync("MESH_KEEP_LAB_LOGS=1").ConfigureAwait(false);
        }

        try
        {
            await Cluster.DownAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await _log.WriteLineAsync($"lab down failed: {e.Message}").ConfigureAwait(false);
        }
        finally
        {
            _lock.Dispose();
        }
    }

    public async Task<ClusterState> StateAsync(CancellationToken ct) => await Store.GetStateAsync(ct).ConfigureAwait(false);

    /// <summary>Runs a command inside a lab namespace; throws when it fails.</summary>
    public Task<string> InAsync(string netns, string file, params string[] args) =>
        Runner.RunCheckedInAsync(NetworkNamespacePath.Named(netns), file, args, null, CancellationToken.None);

    public Task<CommandResult> TryInAsync(string netns, string file, params string[] args) =>
        Runner.RunInAsync(NetworkNamespacePath.Named(netns), file, args, null, CancellationToken.None);

    /// <summary>Every namespace of the lab (nodes, sandboxes, tasks, client).</summary>
    public async Task<IReadOnlyList<string>> NamespacesAsync()
    {
        var list = await Runner.RunCheckedAsync("ip", ["netns", "list"]).ConfigureAwait(false);
        return list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0])
            .Where(n => n.StartsWith("mesh-", StringComparison.Ordinal) && !n.StartsWith("mesh-bench-", StringComparison.Ordinal)).ToList();
    }

    /// <summary>Empties conntrack in every lab namespace, so one run's entries (and TIME_WAIT-paired NAT mappings) do not meet the next.</summary>
    public async Task FlushConntrackAsync()
    {
        foreach (var ns in await NamespacesAsync().ConfigureAwait(false))
        {
            await TryInAsync(ns, "conntrack", "-F").ConfigureAwait(false);
        }
    }

    /// <summary>Waits until every node's daemon (or only those of <paramref name="nodes"/>, 1-based) has applied the store's current revision.</summary>
    public async Task WaitAppliedAsync(CancellationToken ct, TimeSpan? timeout = null, IReadOnlyCollection<int>? nodes = null)
    {
        var revision = (await Store.GetStateAsync(ct).ConfigureAwait(false)).Revision;
        var deadline = Stopwatch.GetTimestamp() + (long)((timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds * Stopwatch.Frequency);
        foreach (var i in nodes ?? Enumerable.Range(1, Plan.Nodes).ToList())
        {
            var node = LabPlan.NodeName(i);
            while (true)
            {
                using var http = ApiClientFactory.Create(LabPlan.Api(node), TimeSpan.FromSeconds(3));
                var info = await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<Mesh.Ingress.Api.NodeInfo>(http, "v1/info", MeshJson.Options, ct).ConfigureAwait(false);
                if (info!.AppliedRevision >= revision) break;
                if (Stopwatch.GetTimestamp() > deadline) throw new TimeoutException($"{node} did not apply revision {revision}");
                await Task.Delay(20, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs this program again inside the client namespace (<c>ip netns exec mesh-client dotnet Mesh.LoadTests.dll ARGS --out DIR</c>),
    /// its output passed through, and returns its exit code and report.
    /// </summary>
    public static Task<(int Code, RunReport? Report)> RunClientAsync(IReadOnlyList<string> args, string outDir, CancellationToken ct) =>
        RunInNamespaceAsync(LabPlan.Client, args, outDir, ct);

    /// <param name="stop">When cancelled, the run is asked to end now (SIGINT: it stops the load, writes its report of what
    /// it measured so far and exits 130). <c>ip netns exec</c> execs the command, so the pid is the load generator's own.</param>
    public static async Task<(int Code, RunReport? Report)> RunInNamespaceAsync(string netns, IReadOnlyList<string> args, string outDir, CancellationToken ct,
        CancellationToken stop = default)
    {
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", netns, .. SelfCommand(), .. args, "--out", outDir]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the client");
        using var stopping = stop.Register(() =>
        {
            try
            {
                if (!p.HasExited) Process.Start("kill", ["-INT", p.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit(5000);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
        });
        try
        {
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // SIGINT reaches the child too (same process group); give it time to write its partial report.
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try { await p.WaitForExitAsync(grace.Token).ConfigureAwait(false); } catch (OperationCanceledException) { p.Kill(true); }
        }
        var json = Path.Combine(outDir, "report.json");
        return (p.ExitCode, File.Exists(json) ? ReportBuilder.FromJson(await File.ReadAllTextAsync(json, CancellationToken.None).ConfigureAwait(false)) : null);
    }

    /// <summary>How to start this program again: <c>dotnet Mesh.LoadTests.dll</c> (or the apphost when there is one).</summary>
    public static string[] SelfCommand()
    {
        var process = Environment.ProcessPath ?? "dotnet";
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? [process, typeof(LabSession).Assembly.Location] : [process];
    }
}
