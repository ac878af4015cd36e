using System.Diagnostics;
using Mesh.LoadTests.Metrics;

namespace Mesh.LoadTests.Core;

/// <summary>One side of a comparison (or the only one): a name and the scenario it runs.</summary>
public sealed record Variant(string Name, ScenarioDefinition Scenario)
{
    /// <summary>URL for the wrk cross-check (HTTP variants only).</summary>
    public Uri? WrkUrl { get; init; }
}

public sealed record ExperimentOptions
{
    /// <summary>The load each variant gets in total; its duration / iterations are split evenly across rounds.</summary>
    public required LoadSimulation Simulation { get; init; }
    /// <summary>Rounds per variant. Variants alternate within a round and the order flips every round (A B, B A, ...).</summary>
    public int Rounds { get; init; } = 1;
    /// <summary>Warm-up before a variant's first round.</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Warm-up before each later round (the other variant ran in between).</summary>
    public TimeSpan RoundWarmup { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>Pause between rounds (e.g. to let TIME_WAIT drain or a lab settle).</summary>
    public TimeSpan Pause { get; init; } = TimeSpan.Zero;
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

public sealed class RoundOutcome
{
    public required int Round { get; init; }
    /// <summary>Position of this run within its round (0 = first).</summary>
    public required int Position { get; init; }
    /// <summary>Seconds from the experiment's start to this round's measuring start.</summary>
    public required double OffsetSeconds { get; init; }
    public required PhaseResult Result { get; init; }
}

public sealed class VariantOutcome
{
    public required Variant Variant { get; init; }
    public List<RoundOutcome> Rounds { get; } = [];

    public StatsSnapshot Total
    {
        get
        {
            var total = new StatsSnapshot(1_000_000_000);
            foreach (var r in Rounds) total.Add(r.Result.Stats);
            return total;
        }
    }

    public double WallSeconds => Rounds.Sum(r => r.Result.WallSeconds);
    public double Throughput => WallSeconds <= 0 ? 0 : Rounds.Sum(r => r.Result.Stats.Requests) / WallSeconds;
    public double OkThroughput => WallSeconds <= 0 ? 0 : Rounds.Sum(r => r.Result.Stats.Ok) / WallSeconds;

    public CpuUsage Cpu
    {
        get
        {
            double wall = Rounds.Sum(r => r.Result.Cpu.WallSeconds);
            double cpu = Rounds.Sum(r => r.Result.Cpu.ProcessCpuSeconds);
            var busy = Rounds.Where(r => !double.IsNaN(r.Result.Cpu.MachineBusyFraction)).ToList();
            double machine = busy.Count == 0 ? double.NaN : busy.Sum(r => r.Result.Cpu.MachineBusyFraction * r.Result.Cpu.WallSeconds) / Math.Max(1e-9, busy.Sum(r => r.Result.Cpu.WallSeconds));
            return new CpuUsage(wall, cpu, Environment.ProcessorCount, machine);
        }
    }
}

/// <summary>
/// Runs every variant for the same load, interleaved in rounds so that drift in the machine (other
/// work, thermal, a lab settling) hits all of them alike; the figures to compare are the ratios.
/// </summary>
public sealed class Experiment(LoadRunner runner)
{
    public LoadRunner Runner { get; } = runner;

    /// <summary>Stopwatch timestamp of the last <see cref="RunAsync"/> start.</summary>
    public long StartTimestamp { get; private set; }

    public static LoadSimulation PerRound(LoadSimulation total, int rounds) => total switch
    {
        ClosedLoop c => c with
        {
            Duration = c.Duration is { } d ? d / rounds : null,
            Iterations = c.Iterations is { } n ? Math.Max(1, n / rounds) : null,
        },
        OpenLoop o => o with { Duration = o.Duration / rounds },
        _ => total,
    };

    public async Task<IReadOnlyList<VariantOutcome>> RunAsync(IReadOnlyList<Variant> variants, ExperimentOptions options, CancellationToken ct = default)
    {
        if (variants.Count == 0) throw new ArgumentException("no variants", nameof(variants));
        int rounds = Math.Max(1, options.Rounds);
        var perRound = PerRound(options.Simulation, rounds);
        var outcomes = variants.Select(v => new VariantOutcome { Variant = v }).ToList();
        StartTimestamp = Stopwatch.GetTimestamp();
        for (int round = 0; round < rounds && !ct.IsCancellationRequested; round++)
        {
            var order = Enumerable.Range(0, variants.Count).ToList();
            if (round % 2 == 1) order.Reverse();
            for (int position = 0; position < order.Count && !ct.IsCancellationRequested; position++)
            {
                var outcome = outcomes[order[position]];
                var run = new RunOptions
                {
                    Warmup = round == 0 ? options.Warmup : options.RoundWarmup,
                    DrainTimeout = options.DrainTimeout,
                };
                var result = await Runner.RunAsync(outcome.Variant.Scenario, perRound, run, ct).ConfigureAwait(false);
                outcome.Rounds.Add(new RoundOutcome
                {
                    Round = round,
                    Position = position,
                    OffsetSeconds = (result.MeasureStart - StartTimestamp) / (double)Stopwatch.Frequency,
                    Result = result,
                });
                if (options.Pause > TimeSpan.Zero) await Task.Delay(options.Pause, ct).ConfigureAwait(false);
            }
        }
        return outcomes;
    }
}
