using System.Diagnostics;
using System.Net;
using System.Text;

namespace Mesh.Ipvs.KernelTests;

/// <summary>
/// Programs N services × M destinations into a fresh namespace three ways, in the same guest, and prints the
/// times and the ratios: (1) the library, one batch; (2) the library, one request + ACK per object;
/// (3) `ipvsadm -R` fed the same content. Each result is verified by counting what ipvsadm -Sn lists.
/// </summary>
public static class Benchmark
{
    public static int Run(int services, int dests)
    {
        var content = Build(services, dests);
        var restore = new StringBuilder();
        foreach (var (s, ds) in content)
        {
            restore.Append($"-A -t {s.Address}:{s.Port} -s rr\n");
            foreach (var d in ds) restore.Append($"-a -t {s.Address}:{s.Port} -r {d.Address}:{d.Port} -m -w 1\n");
        }

        // Warm-up (JIT, module paths) on a small set so the timed runs measure the kernel path.
        Measure("warmup", Build(20, 2), batched: true, out _);
        Measure("warmup", Build(20, 2), batched: false, out _);

        double batched = Measure("library, batched", content, batched: true, out bool ok1);
        double single = Measure("library, one request per object", content, batched: false, out bool ok2);
        double ipvsadm;
        bool ok3;
        using (var ns = new TestNamespace("bench"))
        {
            var sw = Stopwatch.StartNew();
            Shell.Run(["ip", "netns", "exec", ns.Name, "ipvsadm", "-R"], restore.ToString());
            ipvsadm = sw.Elapsed.TotalSeconds;
            ok3 = Verify(ns, services, dests);
        }
        Console.WriteLine($"| method | {services} services x {dests} destinations | verified |");
        Console.WriteLine("| --- | --- | --- |");
        Console.WriteLine($"| Mesh.Ipvs, one batch (IpvsHandle.Apply) | {batched:0.000} s | {ok1} |");
        Console.WriteLine($"| Mesh.Ipvs, one request+ACK per object | {single:0.000} s | {ok2} |");
        Console.WriteLine($"| ipvsadm -R (same content) | {ipvsadm:0.000} s | {ok3} |");
        Console.WriteLine($"ratio ipvsadm -R / Mesh.Ipvs batched: {ipvsadm / batched:0.0}x; ipvsadm -R / one-by-one: {ipvsadm / single:0.0}x");
        return ok1 && ok2 && ok3 ? 0 : 1;
    }

    private static List<(IpvsService, List<IpvsDestination>)> Build(int services, int dests)
    {
        var list = new List<(IpvsService, List<IpvsDestination>)>(services);
        for (int i = 0; i < services; i++)
        {
            var s = IpvsService.Tcp(IPAddress.Parse($"10.{100 + i / 62500}.{i / 250 % 250}.{i % 250 + 1}"), 80);
            var ds = new List<IpvsDestination>(dests);
            for (int j = 0; j < dests; j++) ds.Add(new IpvsDestination(IPAddress.Parse($"10.255.{j / 250}.{j % 250 + 1}"), 8080));
            list.Add((s, ds));
        }
        return list;
    }

    private static double Measure(string name, List<(IpvsService, List<IpvsDestination>)> content, bool batched, out bool verified)
    {
        using var ns = new TestNamespace("bench");
        using var h = IpvsHandle.Open(ns.Path);
        var sw = Stopwatch.StartNew();
        if (batched)
        {
            var b = new IpvsBatch();
            foreach (var (s, ds) in content)
            {
                b.NewService(s);
                foreach (var d in ds) b.NewDestination(s, d);
            }
            h.Apply(b);
        }
        else
        {
            foreach (var (s, ds) in content)
            {
                h.NewService(s);
                foreach (var d in ds) h.NewDestination(s, d);
            }
        }
        double t = sw.Elapsed.TotalSeconds;
        verified = Verify(ns, content.Count, content.Count == 0 ? 0 : content[0].Item2.Count);
        if (name != "warmup") Console.Error.WriteLine($"{name}: {t:0.000} s");
        return t;
    }

    private static bool Verify(TestNamespace ns, int services, int dests)
    {
        var lines = ns.Ipvsadm("-Sn").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return lines.Count(l => l.StartsWith("-A ", StringComparison.Ordinal)) == services
            && lines.Count(l => l.StartsWith("-a ", StringComparison.Ordinal)) == services * dests;
    }
}
