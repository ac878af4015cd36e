using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.LoadTests.Cli;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// A joined daemon's fetch of the holder's state (<see cref="RemoteStore"/>, <c>GET /v1/state</c>) at N services × T
/// tasks, no lab: the holder is an HttpListener on loopback serving the JSON a real holder would. Per round: the raw
/// transfer (the bytes alone), a cold fetch (a new store: every object decoded and checked, what every fetch cost
/// before the store kept its objects), the same state again, and the next revision with one task replaced; how many
/// objects the warm fetches return by reference (the daemon's planning builds only from what changed).
/// </summary>
public static class RemoteStateScenario
{
    public sealed record Row(int Services, int Tasks, int Objects, double TransferMs, double ColdMs, double SameMs, double OneChangedMs, int KeptSame, int KeptOneChanged);

    public static async Task<int> RunAsync(int n, int t, Settings s, CancellationToken ct)
    {
        var a = MakeState(n, t);
        var b = a with { Revision = a.Revision + 1, Tasks = [.. a.Tasks.Select((x, i) => i == a.Tasks.Count / 2 ? x with { Name = x.Service + ".new" } : x)] };
        var jsonA = JsonSerializer.SerializeToUtf8Bytes(a, MeshJson.Options);
        var jsonB = JsonSerializer.SerializeToUtf8Bytes(b, MeshJson.Options);
        var serving = jsonA;

        using var listener = new HttpListener();
        var port = FreePort();
        var url = new Uri($"http://127.0.0.1:{port}/");
        listener.Prefixes.Add(url.ToString());
        listener.Start();
        var server = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await listener.GetContextAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                var body = Volatile.Read(ref serving);
                ctx.Response.ContentType = "application/json";
                ctx.Response.ContentLength64 = body.Length;
                await ctx.Response.OutputStream.WriteAsync(body, ct).ConfigureAwait(false);
                ctx.Response.Close();
            }
        }, CancellationToken.None);

        using var http = new HttpClient { BaseAddress = url };
        var rounds = s.Smoke ? 2 : Math.Max(3, s.Rounds);
        var rows = new List<Row>();
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"remote-state: {n} services x {t} tasks, {jsonA.Length / 1024} KiB, {rounds} rounds")).ConfigureAwait(false);
        for (var r = 0; r < rounds; r++)
        {
            ct.ThrowIfCancellationRequested();
            Volatile.Write(ref serving, jsonA);
            var clock = Stopwatch.StartNew();
            _ = await http.GetByteArrayAsync("v1/state", ct).ConfigureAwait(false);
            var transfer = clock.Elapsed.TotalMilliseconds;

            var store = new RemoteStore(http);
            clock.Restart();
            var cold = await store.GetStateAsync(ct).ConfigureAwait(false);
            var coldMs = clock.Elapsed.TotalMilliseconds;
            if (cold.Services.Count != n || cold.Tasks.Count != n * t)
            {
                await Console.Error.WriteLineAsync($"remote-state: the holder's state did not come through whole ({cold.Services.Count} services, {cold.Tasks.Count} tasks): the generated state is invalid").ConfigureAwait(false);
                return 1;
            }

            clock.Restart();
            var same = await store.GetStateAsync(ct).ConfigureAwait(false);
            var sameMs = clock.Elapsed.TotalMilliseconds;

            Volatile.Write(ref serving, jsonB);
            clock.Restart();
            var changed = await store.GetStateAsync(ct).ConfigureAwait(false);
            var changedMs = clock.Elapsed.TotalMilliseconds;

            var row = new Row(n, t, n + n * t, transfer, coldMs, sameMs, changedMs, Kept(cold, same), Kept(same, changed));
            rows.Add(row);
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"  round {r + 1}: transfer {transfer:0.0} ms, cold {coldMs:0.0} ms, same {sameMs:0.0} ms ({row.KeptSame} kept), one task replaced {changedMs:0.0} ms ({row.KeptOneChanged} kept)")).ConfigureAwait(false);
        }

        listener.Stop();
        await server.ConfigureAwait(false);
        var last = rows[^1];
        if (last.KeptSame != last.Objects || last.KeptOneChanged != last.Objects - 1)
        {
            await Console.Error.WriteLineAsync($"remote-state: expected every object kept by reference ({last.Objects}) and all but the replaced task after one change; got {last.KeptSame} and {last.KeptOneChanged}").ConfigureAwait(false);
            return 1;
        }

        var md = Render(rows);
        var dir = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"remote-state-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "report.md"), md, CancellationToken.None).ConfigureAwait(false);
        Console.Out.Write(md);
        return 0;
    }

    /// <summary>Services and tasks of <paramref name="after"/> that are the very objects of <paramref name="before"/>.</summary>
    private static int Kept(ClusterState before, ClusterState after)
    {
        var old = new HashSet<object>(before.Services.Cast<object>().Concat(before.Tasks), ReferenceEqualityComparer.Instance);
        return after.Services.Count(old.Contains) + after.Tasks.Count(old.Contains);
    }

    /// <summary>N services publishing one TCP port each, T tasks each on three nodes (<see cref="SyntheticState"/>), listed, addresses in the ingress /16.</summary>
    internal static ClusterState MakeState(int n, int t)
    {
        if (n * (t + 1) > 60_000) throw new ArgumentException($"{n} x {t} tasks do not fit the ingress network (10.255.0.0/16)");
        var nodes = Enumerable.Range(0, SyntheticState.NodeCount).Select(i => new ClusterNode
        {
            Name = SyntheticState.NodeName(i),
            AdvertiseAddress = string.Create(CultureInfo.InvariantCulture, $"198.18.0.{11 + i}"),
            IngressSandboxIp = string.Create(CultureInfo.InvariantCulture, $"10.255.0.{2 + i}"),
        }).ToArray();
        return SyntheticState.Make(n, t, index => string.Create(CultureInfo.InvariantCulture, $"10.255.{1 + index / 250}.{1 + index % 250}"), nodes);
    }

    private static int FreePort()
    {
        using var socket = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    private static string Render(IReadOnlyList<Row> rows)
    {
        static double Median(IEnumerable<double> xs)
        {
            var a = xs.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
        }

        var r0 = rows[0];
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"## remote-state: a joined daemon's fetch at {r0.Services} services x {r0.Tasks} tasks ({r0.Objects} objects), medians of {rows.Count} rounds\n\n");
        sb.Append("| transfer alone | cold (every object decoded) | same state again | one task replaced | cold / one task replaced | kept by reference (same / one replaced) |\n");
        sb.Append("| --- | --- | --- | --- | --- | --- |\n");
        var cold = Median(rows.Select(r => r.ColdMs));
        var one = Median(rows.Select(r => r.OneChangedMs));
        sb.Append(CultureInfo.InvariantCulture,
            $"| {Median(rows.Select(r => r.TransferMs)):0.0} ms | {cold:0.0} ms | {Median(rows.Select(r => r.SameMs)):0.0} ms | {one:0.0} ms | {cold / one:0.0}x | {rows[^1].KeptSame} / {rows[^1].KeptOneChanged} of {r0.Objects} |\n");
        return sb.ToString();
    }
}
