using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Mesh.LoadTests.Reporting;

namespace Mesh.LoadTests.Tools;

/// <summary>
/// Cross-checks our HTTP figures with wrk (`wrk -t1 -cN -dXs --latency URL`), started with an
/// argument array (never through a shell) and parsed from its text output.
/// </summary>
public static partial class Wrk
{
    public static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, "wrk");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    public static List<string> Arguments(Uri url, int connections, TimeSpan duration, bool newConnection, TimeSpan timeout)
    {
        var args = new List<string>
        {
            "-t1", $"-c{Math.Max(1, connections)}", $"-d{Math.Max(1, (int)Math.Round(duration.TotalSeconds))}s",
            "--latency", $"--timeout", $"{Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds))}s",
        };
        if (newConnection) { args.Add("-H"); args.Add("Connection: close"); }
        args.Add(url.ToString());
        return args;
    }

    /// <param name="output">Given wrk's whole standard output (what a <c>-s</c> script wrote besides the figures).</param>
    public static async Task<WrkReport> RunAsync(string wrkPath, string variant, Uri url, IReadOnlyList<string> arguments, CancellationToken ct, Action<string>? output = null)
    {
        var report = new WrkReport { Variant = variant, Url = url.ToString(), Arguments = [.. arguments] };
        var psi = new ProcessStartInfo(wrkPath) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("wrk did not start");
            var stdout = p.StandardOutput.ReadToEndAsync(ct);
            var stderr = p.StandardError.ReadToEndAsync(ct);
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
            var text = await stdout.ConfigureAwait(false);
            var err = await stderr.ConfigureAwait(false);
            if (p.ExitCode != 0) report.Error = $"wrk exited {p.ExitCode}: {err.Trim()}";
            output?.Invoke(text);
            Parse(text, report);
            if (report.Rps == 0 && report.Error is null) report.Error = "no Requests/sec in wrk output";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            report.Error = e.Message;
        }
        return report;
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RpsLine();
    [GeneratedRegex(@"^\s*Latency\s+([\d.]+)(us|ms|s|m)\s+([\d.]+)(us|ms|s|m)\s+([\d.]+)(us|ms|s|m)", RegexOptions.Multiline)]
    private static partial Regex LatencyLine();
    [GeneratedRegex(@"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", RegexOptions.Multiline)]
    private static partial Regex PercentileLine();
    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex RequestsLine();
    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrorsLine();
    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex Non2xxLine();

    /// <summary>Fills <paramref name="report"/> from wrk's text output.</summary>
    public static void Parse(string output, WrkReport report)
    {
        var c = CultureInfo.InvariantCulture;
        if (RpsLine().Match(output) is { Success: true } rps) report.Rps = double.Parse(rps.Groups[1].Value, c);
        if (LatencyLine().Match(output) is { Success: true } lat)
        {
            report.LatencyAvgUs = ToUs(lat.Groups[1].Value, lat.Groups[2].Value);
            report.LatencyMaxUs = ToUs(lat.Groups[5].Value, lat.Groups[6].Value);
        }
        foreach (Match m in PercentileLine().Matches(output))
        {
            double us = ToUs(m.Groups[2].Value, m.Groups[3].Value);
            switch (m.Groups[1].Value)
            {
                case "50": report.P50Us = us; break;
                case "90": report.P90Us = us; break;
                case "99": report.P99Us = us; break;
            }
        }
        if (RequestsLine().Match(output) is { Success: true } req) report.Requests = long.Parse(req.Groups[1].Value, c);
        if (SocketErrorsLine().Match(output) is { Success: true } se)
            report.SocketErrors = Enumerable.Range(1, 4).Sum(i => long.Parse(se.Groups[i].Value, c));
        if (Non2xxLine().Match(output) is { Success: true } n2) report.Non2xx = long.Parse(n2.Groups[1].Value, c);
    }

    private static double ToUs(string value, string unit)
    {
        double v = double.Parse(value, CultureInfo.InvariantCulture);
        return unit switch { "us" => v, "ms" => v * 1e3, "s" => v * 1e6, "m" => v * 60e6, _ => v };
    }
}
