using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Metrics;

namespace Mesh.LoadTests.Reporting;

// The report is a plain data model: built once from the experiment, then written as JSON,
// Markdown and HTML. Times are in microseconds unless a name says otherwise.

public sealed class RunReport
{
    public string Tool { get; set; } = "Mesh.LoadTests";
    public int SchemaVersion { get; set; } = 1;
    public string Scenario { get; set; } = "";
    public string Description { get; set; } = "";
    public DateTimeOffset StartedUtc { get; set; }
    public string CommandLine { get; set; } = "";
    public MachineInfo Machine { get; set; } = new();
    public Dictionary<string, string> Settings { get; set; } = [];
    public List<VariantReport> Variants { get; set; } = [];
    public List<RatioReport> Ratios { get; set; } = [];
    public List<WrkReport> Wrk { get; set; } = [];
    public List<string> Warnings { get; set; } = [];
}

public sealed class MachineInfo
{
    public string Host { get; set; } = "";
    public int Cores { get; set; }
    public string Os { get; set; } = "";
    public string Runtime { get; set; } = "";
    public string Kernel { get; set; } = "";
    /// <summary>Cores' worth of CPU the generator may use before it is flagged as saturated.</summary>
    public double GeneratorCoreBudget { get; set; }

    public static MachineInfo Current(double coreBudget)
    {
        string kernel = "";
        try { kernel = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : ""; }
        catch (IOException) { }
        return new MachineInfo
        {
            Host = Environment.MachineName,
            Cores = Environment.ProcessorCount,
            Os = RuntimeInformation.OSDescription,
            Runtime = RuntimeInformation.FrameworkDescription,
            Kernel = kernel,
            GeneratorCoreBudget = coreBudget,
        };
    }
}

public sealed class LatencySummary
{
    public long Count { get; set; }
    public double MinUs { get; set; }
    public double MeanUs { get; set; }
    public double StdDevUs { get; set; }
    public double P50Us { get; set; }
    public double P90Us { get; set; }
    public double P99Us { get; set; }
    public double P999Us { get; set; }
    public double MaxUs { get; set; }

    public static LatencySummary From(LatencyHistogram h) => new()
    {
        Count = h.Count,
        MinUs = h.Count == 0 ? 0 : Us(h.Min),
        MeanUs = Math.Round(h.Mean / 1000.0, 3),
        StdDevUs = Math.Round(h.StdDev / 1000.0, 3),
        P50Us = Us(h.ValueAtPercentile(50)),
        P90Us = Us(h.ValueAtPercentile(90)),
        P99Us = Us(h.ValueAtPercentile(99)),
        P999Us = Us(h.ValueAtPercentile(99.9)),
        MaxUs = Us(h.Max),
    };

    private static double Us(long ns) => Math.Round(ns / 1000.0, 3);
}

public sealed class CpuReport
{
    public double WallSeconds { get; set; }
    public double ProcessCpuSeconds { get; set; }
    /// <summary>Process CPU time / wall time: cores' worth the generator used.</summary>
    public double GeneratorCores { get; set; }
    /// <summary>GeneratorCores / machine cores.</summary>
    public double GeneratorFraction { get; set; }
    /// <summary>Whole machine busy fraction over the same interval (all processes), or null if unknown.</summary>
    public double? MachineBusyFraction { get; set; }
    public bool Saturated { get; set; }

    public static CpuReport From(CpuUsage u, double budget) => new()
    {
        WallSeconds = Math.Round(u.WallSeconds, 4),
        ProcessCpuSeconds = Math.Round(u.ProcessCpuSeconds, 4),
        GeneratorCores = Math.Round(u.GeneratorCores, 4),
        GeneratorFraction = Math.Round(u.GeneratorFraction, 4),
        MachineBusyFraction = double.IsNaN(u.MachineBusyFraction) ? null : Math.Round(u.MachineBusyFraction, 4),
        Saturated = u.Saturated(budget),
    };
}

public sealed class SeriesPoint
{
    /// <summary>Seconds since the experiment started (rounds of different variants interleave on this axis).</summary>
    public double T { get; set; }
    public int Round { get; set; }
    public double Rps { get; set; }
    public long Ok { get; set; }
    public long Failed { get; set; }
    public double P50Us { get; set; }
    public double P99Us { get; set; }
}

public sealed class RoundReport
{
    public int Round { get; set; }
    public int Position { get; set; }
    public double OffsetSeconds { get; set; }
    public double WallSeconds { get; set; }
    public long Requests { get; set; }
    public long Ok { get; set; }
    public long Failed { get; set; }
    public double Rps { get; set; }
    public double P50Us { get; set; }
    public double P99Us { get; set; }
    public long Scheduled { get; set; }
    public long Unfinished { get; set; }
    public long InFlightLimitHits { get; set; }
    public CpuReport Cpu { get; set; } = new();
}

public sealed class HistogramData
{
    public int PrecisionBits { get; set; }
    public int MaxExponent { get; set; }
    public long Min { get; set; }
    public long Max { get; set; }
    /// <summary>Non-empty buckets as [index, count] pairs; values are nanoseconds. Merge reports by adding counts.</summary>
    public List<long[]> Buckets { get; set; } = [];

    public static HistogramData From(LatencyHistogram h) => new()
    {
        PrecisionBits = h.PrecisionBits,
        MaxExponent = h.MaxExponent,
        Min = h.Count == 0 ? 0 : h.Min,
        Max = h.Max,
        Buckets = h.NonEmptyBuckets().Select(b => new[] { (long)b.Index, b.Count }).ToList(),
    };

    public LatencyHistogram ToHistogram() =>
        LatencyHistogram.FromBuckets(PrecisionBits, MaxExponent, Buckets.Select(b => ((int)b[0], b[1])), Min, Max);
}

public sealed class VariantReport
{
    public string Name { get; set; } = "";
    public string Target { get; set; } = "";
    public string Steps { get; set; } = "";
    public string Load { get; set; } = "";
    public long Requests { get; set; }
    public long Ok { get; set; }
    public long Failed { get; set; }
    public double ErrorRate { get; set; }
    public double WallSeconds { get; set; }
    public double Rps { get; set; }
    public double OkRps { get; set; }
    public long Bytes { get; set; }
    /// <summary>Measured from each iteration's intended start (open loop) / actual start (closed loop).</summary>
    public LatencySummary Latency { get; set; } = new();
    /// <summary>Measured from the actual send; differs from Latency only in open loops that fell behind.</summary>
    public LatencySummary ServiceTime { get; set; } = new();
    /// <summary>Open loop: how late the scheduler sent, actual − intended.</summary>
    public LatencySummary SendLag { get; set; } = new();
    public Dictionary<string, long> Statuses { get; set; } = [];
    public Dictionary<string, long> Errors { get; set; } = [];
    public long Scheduled { get; set; }
    public long Unfinished { get; set; }
    public CpuReport Cpu { get; set; } = new();
    public List<RoundReport> Rounds { get; set; } = [];
    public List<SeriesPoint> Series { get; set; } = [];
    public HistogramData Histogram { get; set; } = new();
}

public sealed class RatioReport
{
    /// <summary>Numerator variant.</summary>
    public string Variant { get; set; } = "";
    /// <summary>Denominator variant.</summary>
    public string Baseline { get; set; } = "";
    /// <summary>Throughput (ok req/s) ratio over all rounds.</summary>
    public double Rps { get; set; }
    /// <summary>Per-round ok-throughput ratios, in round order.</summary>
    public List<double> RoundRps { get; set; } = [];
    public double RoundRpsMin { get; set; }
    public double RoundRpsMedian { get; set; }
    public double RoundRpsMax { get; set; }
    public double P50 { get; set; }
    public double P99 { get; set; }
}

public sealed class WrkReport
{
    public string Variant { get; set; } = "";
    public string Url { get; set; } = "";
    public List<string> Arguments { get; set; } = [];
    public double Rps { get; set; }
    public double? LatencyAvgUs { get; set; }
    public double? LatencyMaxUs { get; set; }
    public double? P50Us { get; set; }
    public double? P90Us { get; set; }
    public double? P99Us { get; set; }
    public long Requests { get; set; }
    public long SocketErrors { get; set; }
    public long Non2xx { get; set; }
    public double? OursRps { get; set; }
    public string? Error { get; set; }
}

public static class ReportBuilder
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static RunReport Build(string scenario, string description, IReadOnlyList<VariantOutcome> outcomes, ExperimentOptions options,
        double coreBudget, DateTimeOffset started, IReadOnlyDictionary<string, string> settings, string commandLine)
    {
        var report = new RunReport
        {
            Scenario = scenario,
            Description = description,
            StartedUtc = started,
            CommandLine = commandLine,
            Machine = MachineInfo.Current(coreBudget),
            Settings = new Dictionary<string, string>(settings),
        };
        report.Settings["load"] = options.Simulation.Describe();
        report.Settings["rounds"] = options.Rounds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        report.Settings["warmup"] = Durations.Format(options.Warmup);
        report.Settings["roundWarmup"] = Durations.Format(options.RoundWarmup);

        foreach (var o in outcomes) report.Variants.Add(BuildVariant(o, coreBudget));

        // ratios: every variant against the last one (for "--a mesh --b direct" that is mesh/direct)
        if (outcomes.Count >= 2)
        {
            var baseline = outcomes[^1];
            for (int i = 0; i < outcomes.Count - 1; i++) report.Ratios.Add(BuildRatio(outcomes[i], baseline));
        }

        foreach (var v in report.Variants)
        {
            if (v.Cpu.Saturated || v.Rounds.Any(r => r.Cpu.Saturated))
                report.Warnings.Add($"generator saturated during '{v.Name}': it used {v.Cpu.GeneratorCores:0.00} of a {coreBudget:0.##}-core budget — the figures measure the generator, not the target");
            if (v.Requests > 0 && v.ErrorRate > 0.01)
                report.Warnings.Add($"'{v.Name}': {v.ErrorRate:P1} of requests failed");
            if (v.Unfinished > 0)
                report.Warnings.Add($"'{v.Name}': {v.Unfinished} requests were still running when the drain timeout expired (not counted)");
            if (v.Requests == 0)
                report.Warnings.Add($"'{v.Name}': no request completed");
        }
        var lag = outcomes.SelectMany(o => o.Rounds).Where(r => r.Result.Simulation is OpenLoop)
            .Select(r => r.Result.Stats.SendLag.ValueAtPercentile(99)).DefaultIfEmpty(0).Max();
        if (lag > 5_000_000)
            report.Warnings.Add($"open-loop scheduler fell behind: send lag p99 {lag / 1e6:0.0} ms (latency is still measured from the intended time)");
        return report;
    }

    private static VariantReport BuildVariant(VariantOutcome o, double coreBudget)
    {
        var total = o.Total;
        var v = new VariantReport
        {
            Name = o.Variant.Name,
            Target = o.Variant.Scenario.Target,
            Steps = string.Join(" → ", o.Variant.Scenario.Steps.Select(s => s.Name)),
            Load = o.Rounds.FirstOrDefault()?.Result.Simulation.Describe() + (o.Rounds.Count > 1 ? $" × {o.Rounds.Count} rounds" : ""),
            Requests = total.Requests,
            Ok = total.Ok,
            Failed = total.Failed,
            ErrorRate = total.Requests == 0 ? 0 : Math.Round(total.Failed / (double)total.Requests, 6),
            WallSeconds = Math.Round(o.WallSeconds, 4),
            Rps = Math.Round(o.Throughput, 2),
            OkRps = Math.Round(o.OkThroughput, 2),
            Bytes = total.Bytes,
            Latency = LatencySummary.From(total.Latency),
            ServiceTime = LatencySummary.From(total.ServiceTime),
            SendLag = LatencySummary.From(total.SendLag),
            Statuses = total.Statuses.OrderByDescending(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value),
            Errors = total.Errors.OrderByDescending(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value),
            Scheduled = o.Rounds.Sum(r => r.Result.Scheduled),
            Unfinished = o.Rounds.Sum(r => r.Result.Unfinished),
            Cpu = CpuReport.From(o.Cpu, coreBudget),
            Histogram = HistogramData.From(total.Latency),
        };
        foreach (var r in o.Rounds)
        {
            var s = r.Result.Stats;
            v.Rounds.Add(new RoundReport
            {
                Round = r.Round,
                Position = r.Position,
                OffsetSeconds = Math.Round(r.OffsetSeconds, 4),
                WallSeconds = Math.Round(r.Result.WallSeconds, 4),
                Requests = s.Requests,
                Ok = s.Ok,
                Failed = s.Failed,
                Rps = Math.Round(r.Result.OkThroughput, 2),
                P50Us = Math.Round(s.Latency.ValueAtPercentile(50) / 1000.0, 3),
                P99Us = Math.Round(s.Latency.ValueAtPercentile(99) / 1000.0, 3),
                Scheduled = r.Result.Scheduled,
                Unfinished = r.Result.Unfinished,
                InFlightLimitHits = r.Result.InFlightLimitHits,
                Cpu = CpuReport.From(r.Result.Cpu, coreBudget),
            });
            double width = s.Series.SlotWidthNs / 1e9;
            foreach (var (start, slot) in s.Series.Slots())
            {
                long n = slot.Ok + slot.Failed;
                // the last slot of a round is usually cut short by the round's end: rate over the part that ran
                double covered = Math.Min(width, r.Result.WallSeconds - start / 1e9);
                if (covered < width * 0.25) continue;
                v.Series.Add(new SeriesPoint
                {
                    T = Math.Round(r.OffsetSeconds + start / 1e9, 4),
                    Round = r.Round,
                    Rps = Math.Round(n / covered, 2),
                    Ok = slot.Ok,
                    Failed = slot.Failed,
                    P50Us = Math.Round(slot.Latency.ValueAtPercentile(50) / 1000.0, 3),
                    P99Us = Math.Round(slot.Latency.ValueAtPercentile(99) / 1000.0, 3),
                });
            }
        }
        return v;
    }

    private static RatioReport BuildRatio(VariantOutcome a, VariantOutcome b)
    {
        var ta = a.Total;
        var tb = b.Total;
        var rounds = new List<double>();
        for (int i = 0; i < Math.Min(a.Rounds.Count, b.Rounds.Count); i++)
            rounds.Add(Math.Round(Div(a.Rounds[i].Result.OkThroughput, b.Rounds[i].Result.OkThroughput), 4));
        var sorted = rounds.Order().ToList();
        return new RatioReport
        {
            Variant = a.Variant.Name,
            Baseline = b.Variant.Name,
            Rps = Math.Round(Div(a.OkThroughput, b.OkThroughput), 4),
            RoundRps = rounds,
            RoundRpsMin = sorted.Count > 0 ? sorted[0] : 0,
            RoundRpsMax = sorted.Count > 0 ? sorted[^1] : 0,
            RoundRpsMedian = sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : Math.Round((sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2, 4),
            P50 = Math.Round(Div(ta.Latency.ValueAtPercentile(50), tb.Latency.ValueAtPercentile(50)), 4),
            P99 = Math.Round(Div(ta.Latency.ValueAtPercentile(99), tb.Latency.ValueAtPercentile(99)), 4),
        };
    }

    private static double Div(double a, double b) => b == 0 ? 0 : a / b;

    public static string ToJson(RunReport report) => JsonSerializer.Serialize(report, Json);

    public static RunReport FromJson(string json) => JsonSerializer.Deserialize<RunReport>(json, Json) ?? throw new InvalidDataException("empty report");
}
