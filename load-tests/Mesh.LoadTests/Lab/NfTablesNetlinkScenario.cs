using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Ipvs.Netlink.NfTables;
using Mesh.Ipvs.Tests;
using Mesh.LoadTests.Cli;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// nf_tables through the netlink library against the <c>nft</c> process, same objects, same run (issue 12 part 1):
/// the ingress sandbox table with N services × T tasks (a chain, an anonymous numgen → dnat map and a rule per
/// service, the published-ports and verdict maps), created cold by <c>nft -f -</c> in one scratch namespace and by
/// one netlink transaction in another; the two listings must be equal. Then one element added to published-ports
/// (the anchors' 74 ms <c>nft</c> one-element add), <c>nft -f -</c> against one netlink commit on a socket kept open
/// (as a daemon would), the median of 5 each, alternating; and the read-back (<c>nft -j list table</c> against
/// the netlink dumps of chains, rules, sets and elements). Namespaces <c>mesh-bench-nl-*</c> are created and deleted here.
/// </summary>
public static class NfTablesNetlinkScenario
{
    public sealed record Row(int Services, int Tasks, int Changes, double NftColdMs, double NetlinkColdMs, double NftAddMs, double NetlinkAddMs, double NftListMs, double NetlinkDumpMs);

    private const int Repeats = 5;

    public static async Task<int> RunAsync(IReadOnlyList<int> sizes, int tasks, Settings s, CancellationToken ct)
    {
        if (!Environment.IsPrivilegedProcess) throw new InvalidOperationException("nft-netlink creates network namespaces: run as root");
        var rows = new List<Row>();
        foreach (var n in sizes)
        {
            ct.ThrowIfCancellationRequested();
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"nft-netlink: {n} services x {tasks} tasks ...")).ConfigureAwait(false);
            var r = Measure(n, tasks);
            rows.Add(r);
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"  cold nft {r.NftColdMs:0} ms / netlink {r.NetlinkColdMs:0} ms; one element nft {r.NftAddMs:0.00} ms / netlink {r.NetlinkAddMs:0.000} ms")).ConfigureAwait(false);
        }

        var md = Render(rows);
        var dir = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"nft-netlink-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "report.md"), md, CancellationToken.None).ConfigureAwait(false);
        await Console.Error.WriteLineAsync($"reports: {Path.GetFullPath(dir)}/report.md").ConfigureAwait(false);
        Console.Out.Write(md);
        return 0;
    }

    private static Row Measure(int n, int tasks)
    {
        var viaNft = $"mesh-bench-nl-nft-{n}";
        var viaNetlink = $"mesh-bench-nl-nl-{n}";
        foreach (var ns in new[] { viaNft, viaNetlink })
        {
            Run(null, null, false, "ip", "netns", "del", ns);
            Run(null, null, true, "ip", "netns", "add", ns);
        }
        try
        {
            var services = NfTablesSandboxLayout.Many(n, tasks);
            var script = NfTablesSandboxLayout.Script(services);

            var sw = Stopwatch.StartNew();
            Run(viaNft, script, true, "nft", "-f", "-");
            var nftCold = sw.Elapsed.TotalMilliseconds;

            using var handle = NfTablesHandle.Open("/run/netns/" + viaNetlink);
            sw.Restart();
            var batch = NfTablesSandboxLayout.Batch(services); // building the objects is part of the cost
            handle.Commit(batch);
            var netlinkCold = sw.Elapsed.TotalMilliseconds;

            sw.Restart();
            var listed = Run(viaNft, null, true, "nft", "-j", "list", "table", "ip", "mesh");
            var nftList = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            var chains = handle.GetChains(Family.Ip, "mesh");
            var rules = handle.GetRules(Family.Ip, "mesh");
            int elements = 0;
            foreach (var set in handle.GetSets(Family.Ip, "mesh"))
            {
                elements += handle.GetElements(Family.Ip, "mesh", set.Name).Count;
            }
            var netlinkDump = sw.Elapsed.TotalMilliseconds;
            if (chains.Count != n + 4 || rules.Count != n + 5 || elements < 2 * n || listed.Length == 0)
            {
                throw new InvalidOperationException($"nft-netlink: read back {chains.Count} chains, {rules.Count} rules, {elements} elements for {n} services");
            }
            // The independent reader: both namespaces list the same table.
            if (Run(viaNft, null, true, "nft", "list", "table", "ip", "mesh") != Run(viaNetlink, null, true, "nft", "list", "table", "ip", "mesh"))
            {
                throw new InvalidOperationException("nft-netlink: the table written through netlink does not list as the one nft wrote");
            }

            // One element added (and removed again, untimed), alternating nft and netlink.
            const string key = "tcp . 65000 : 0x00000100";
            var element = new SetElement(NftData.Concat(NftData.U8(6), NftData.Be16(65000)), NftData.U32(0x100));
            var nftAdd = new List<double>();
            var netlinkAdd = new List<double>();
            for (int i = 0; i < Repeats; i++)
            {
                sw.Restart();
                Run(viaNft, $"add element ip mesh published-ports {{ {key} }}\n", true, "nft", "-f", "-");
                nftAdd.Add(sw.Elapsed.TotalMilliseconds);
                Run(viaNft, $"delete element ip mesh published-ports {{ {key} }}\n", true, "nft", "-f", "-");

                sw.Restart();
                handle.Commit(new NfTablesBatch().AddElements(Family.Ip, "mesh", "published-ports", [element]));
                netlinkAdd.Add(sw.Elapsed.TotalMilliseconds);
                handle.Commit(new NfTablesBatch().DeleteElements(Family.Ip, "mesh", "published-ports", [element]));
            }

            return new Row(n, tasks, batch.Count, Math.Round(nftCold, 1), Math.Round(netlinkCold, 1), Math.Round(Median(nftAdd), 2), Math.Round(Median(netlinkAdd), 3),
                Math.Round(nftList, 1), Math.Round(netlinkDump, 1));
        }
        finally
        {
            foreach (var ns in new[] { viaNft, viaNetlink }) Run(null, null, false, "ip", "netns", "del", ns);
        }
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s[s.Count / 2];
    }

    private static string Render(IReadOnlyList<Row> rows)
    {
        var sb = new StringBuilder();
        sb.Append("| services × tasks | changes in the transaction | cold: `nft -f` / netlink | ratio | one element added: `nft -f` / netlink (median of 5) | ratio | read back: `nft -j list` / netlink dumps | ratio |\n");
        sb.Append("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        foreach (var r in rows)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"| {r.Services:N0} × {r.Tasks} | {r.Changes:N0} | {r.NftColdMs:0} ms / {r.NetlinkColdMs:0} ms | {r.NftColdMs / r.NetlinkColdMs:0.0}× | {r.NftAddMs:0.00} ms / {r.NetlinkAddMs:0.000} ms | {r.NftAddMs / r.NetlinkAddMs:0}× | {r.NftListMs:0} ms / {r.NetlinkDumpMs:0} ms | {r.NftListMs / r.NetlinkDumpMs:0.0}× |\n");
        }
        return sb.ToString();
    }

    private static string Run(string? netns, string? stdin, bool check, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? file : "ip") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        if (netns is not null)
        {
            foreach (var a in new[] { "netns", "exec", netns, file }) psi.ArgumentList.Add(a);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (check && p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}{(netns is null ? "" : " in " + netns)}: exit {p.ExitCode}: {stderr.Result}");
        return stdout;
    }
}
