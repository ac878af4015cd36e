using System.Collections.Concurrent;
using System.Diagnostics;
using Mesh.LoadTests.Metrics;

namespace Mesh.LoadTests.Core;

/// <summary>How load is applied.</summary>
public abstract record LoadSimulation
{
    public abstract string Describe();
}

/// <summary>
/// Closed loop: <paramref name="Concurrency"/> virtual users each run iterations back to back, until
/// <paramref name="Duration"/> has passed and/or <paramref name="Iterations"/> measured iterations
/// have started (whichever comes first; at least one is required).
/// </summary>
public sealed record ClosedLoop(int Concurrency, TimeSpan? Duration = null, long? Iterations = null) : LoadSimulation
{
    public override string Describe() =>
        $"closed loop, {Concurrency} virtual users" +
        (Duration is { } d ? $", {Durations.Format(d)}" : "") +
        (Iterations is { } n ? $", {n} iterations" : "");
}

/// <summary>
/// Open loop: iterations are due at a constant <paramref name="Rate"/> per second (after a linear
/// ramp from 0 over <paramref name="RampUp"/>), whatever the target's response time. Latency is
/// measured from each iteration's intended send time, so a stalled target is charged for every send
/// it delayed (no coordinated omission). At most <paramref name="MaxInFlight"/> iterations run at
/// once; when that bound is hit the schedule falls behind and the delay shows up in the latency.
/// </summary>
public sealed record OpenLoop(double Rate, TimeSpan Duration, TimeSpan RampUp = default, int MaxInFlight = 10_000) : LoadSimulation
{
    public override string Describe() =>
        $"open loop, {Rate:0.##}/s for {Durations.Format(Duration)}" +
        (RampUp > TimeSpan.Zero ? $" after a {Durations.Format(RampUp)} ramp" : "") +
        $", ≤{MaxInFlight} in flight";

    /// <summary>Seconds from the schedule's start at which send <paramref name="i"/> is due.</summary>
    public static double IntendedOffsetSeconds(long i, double rate, double rampSeconds)
    {
        // sends due by time t: rate·t²/(2·ramp) during the ramp, then rate·ramp/2 + rate·(t − ramp)
        if (rampSeconds <= 0) return i / rate;
        double rampSends = rate * rampSeconds / 2;
        if (i < rampSends) return Math.Sqrt(2.0 * i * rampSeconds / rate);
        return rampSeconds + (i - rampSends) / rate;
    }
}

public sealed record RunOptions
{
    /// <summary>Load applied before measuring starts; its samples are discarded (for open loops this follows the ramp).</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>How long to wait for in-flight iterations after the last one was started.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Width of a time-series slot; null picks one from the duration.</summary>
    public TimeSpan? SeriesSlot { get; init; }
}

/// <summary>What one measured run of one scenario variant produced.</summary>
public sealed class PhaseResult
{
    public required string Scenario { get; init; }
    public required string Target { get; init; }
    public required LoadSimulation Simulation { get; init; }
    public required StatsSnapshot Stats { get; init; }
    /// <summary>Stopwatch timestamp when measuring started.</summary>
    public required long MeasureStart { get; init; }
    /// <summary>Seconds from measuring start to the last completion.</summary>
    public required double WallSeconds { get; init; }
    public required CpuUsage Cpu { get; init; }
    /// <summary>Open loop: sends due in the measured window.</summary>
    public long Scheduled { get; init; }
    /// <summary>Iterations still running when the drain timeout expired (not in the stats).</summary>
    public long Unfinished { get; init; }
    /// <summary>Open loop: times the scheduler had to wait for a free in-flight slot.</summary>
    public long InFlightLimitHits { get; init; }
    public long WarmupSamples { get; init; }

    public double Throughput => WallSeconds <= 0 ? 0 : Stats.Requests / WallSeconds;
    public double OkThroughput => WallSeconds <= 0 ? 0 : Stats.Ok / WallSeconds;
}

/// <summary>Live counters for the progress line.</summary>
public sealed class LiveView
{
    public required string Label { get; init; }
    public required long Start { get; init; }
    public required long MeasureStart { get; init; }
    public required StatsSink Warmup { get; init; }
    public required StatsSink Measured { get; init; }
    public Func<long> InFlight { get; init; } = () => 0;
}

/// <summary>Runs a scenario under a load simulation and returns merged statistics.</summary>
public sealed class LoadRunner
{
    private volatile LiveView? _live;

    static LoadRunner()
    {
        // Completions run on the thread pool. With its default minimum (one thread per core) a couple
        // of threads blocked elsewhere in the process (seen with the test host's own I/O) stall every
        // completion for the ~0.5 s the pool takes to inject a thread — a gap that would be charged to
        // the target. Start with a few spare threads instead.
        ThreadPool.GetMinThreads(out var worker, out var io);
        int want = Math.Max(16, Environment.ProcessorCount * 4);
        ThreadPool.SetMinThreads(Math.Max(worker, want), Math.Max(io, want));
    }

    /// <summary>What is running now (null between runs).</summary>
    public LiveView? Live => _live;

    public Task<PhaseResult> RunAsync(ScenarioDefinition scenario, LoadSimulation simulation, RunOptions options, CancellationToken ct = default) =>
        simulation switch
        {
            ClosedLoop c => RunClosedAsync(scenario, c, options, ct),
            OpenLoop o => RunOpenAsync(scenario, o, options, ct),
            _ => throw new ArgumentException("unknown simulation", nameof(simulation)),
        };

    private static long Ticks(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);

    private static long SlotWidthNs(RunOptions o, TimeSpan? duration)
    {
        if (o.SeriesSlot is { } s) return Math.Max(1_000_000, (long)(s.TotalMilliseconds * 1e6));
        var d = duration ?? TimeSpan.FromSeconds(60);
        // about 60 points per run, between 50 ms and 1 s (the series coarsens itself if a run overruns)
        double ms = Math.Clamp(d.TotalMilliseconds / 60, 50, 1000);
        return (long)(ms * 1e6);
    }

    private static async Task<CpuSample> SampleCpuAtAsync(long timestamp, CancellationToken ct)
    {
        long wait = timestamp - Stopwatch.GetTimestamp();
        if (wait > 0)
        {
            try { await Task.Delay(TimeSpan.FromSeconds(wait / (double)Stopwatch.Frequency), ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        return CpuSample.Take();
    }

    private async Task<PhaseResult> RunClosedAsync(ScenarioDefinition scenario, ClosedLoop sim, RunOptions o, CancellationToken ct)
    {
        if (sim.Concurrency < 1) throw new ArgumentException("concurrency must be ≥ 1");
        if (sim.Duration is null && sim.Iterations is null) throw new ArgumentException("a closed loop needs a duration or an iteration count");
        var instances = new ScenarioInstance[sim.Concurrency];
        for (int i = 0; i < instances.Length; i++) instances[i] = new ScenarioInstance(scenario, i);
        try
        {
            long t0 = Stopwatch.GetTimestamp();
            long measureStart = t0 + Ticks(o.Warmup);
            long measureEnd = sim.Duration is { } d ? measureStart + Ticks(d) : long.MaxValue;
            long slot = SlotWidthNs(o, sim.Duration);
            var warm = new StatsSink(t0, slot);
            var sink = new StatsSink(measureStart, slot);
            long remaining = sim.Iterations ?? long.MaxValue;
            long inFlight = 0;
            _live = new LiveView { Label = scenario.Name, Start = t0, MeasureStart = measureStart, Warmup = warm, Measured = sink, InFlight = () => Volatile.Read(ref inFlight) };
            var cpuStartTask = SampleCpuAtAsync(measureStart, ct);

            async Task VirtualUser(int index)
            {
                await Task.Yield();
                var instance = instances[index];
                while (!ct.IsCancellationRequested)
                {
                    long start = Stopwatch.GetTimestamp();
                    bool measuring = start >= measureStart;
                    if (measuring)
                    {
                        if (start >= measureEnd) break;
                        if (Interlocked.Decrement(ref remaining) < 0) break;
                    }
                    StepResult r;
                    Interlocked.Increment(ref inFlight);
                    try
                    {
                        r = await instance.ExecuteAsync(ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (ct.IsCancellationRequested)
                    {
                        break;
                    }
                    finally
                    {
                        Interlocked.Decrement(ref inFlight);
                    }
                    long end = Stopwatch.GetTimestamp();
                    (measuring ? sink : warm).Record(index, start, start, end, r);
                }
            }

            var users = new Task[instances.Length];
            for (int i = 0; i < users.Length; i++) users[i] = VirtualUser(i);
            await Task.WhenAll(users).ConfigureAwait(false);
            var cpuStart = await cpuStartTask.ConfigureAwait(false);
            var cpuEnd = CpuSample.Take();
            var stats = sink.Snapshot();
            long last = stats.Requests > 0 ? stats.LastEnd : Stopwatch.GetTimestamp();
            return new PhaseResult
            {
                Scenario = scenario.Name,
                Target = scenario.Target,
                Simulation = sim,
                Stats = stats,
                MeasureStart = measureStart,
                WallSeconds = Math.Max(0, (last - measureStart) / (double)Stopwatch.Frequency),
                Cpu = CpuUsage.Between(cpuStart, cpuEnd),
                WarmupSamples = warm.Completed,
            };
        }
        finally
        {
            _live = null;
            foreach (var i in instances) i.Dispose();
        }
    }

    private sealed class OpenLoopState(ScenarioDefinition scenario)
    {
        private readonly ConcurrentBag<ScenarioInstance> _pool = [];
        private int _created;
        public readonly ConcurrentBag<ScenarioInstance> All = [];

        public ScenarioInstance Rent()
        {
            if (_pool.TryTake(out var i)) return i;
            var n = new ScenarioInstance(scenario, Interlocked.Increment(ref _created) - 1);
            All.Add(n);
            return n;
        }

        public void Return(ScenarioInstance i) => _pool.Add(i);
    }

    private async Task<PhaseResult> RunOpenAsync(ScenarioDefinition scenario, OpenLoop sim, RunOptions o, CancellationToken ct)
    {
        if (!(sim.Rate > 0) || double.IsInfinity(sim.Rate)) throw new ArgumentException("rate must be > 0");
        if (sim.MaxInFlight < 1) throw new ArgumentException("max in flight must be ≥ 1");
        var state = new OpenLoopState(scenario);
        var slots = new SemaphoreSlim(sim.MaxInFlight, sim.MaxInFlight);
        try
        {
            double ramp = sim.RampUp.TotalSeconds;
            double measureOffset = ramp + o.Warmup.TotalSeconds;
            double totalSeconds = measureOffset + sim.Duration.TotalSeconds;
            long t0 = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 100; // 10 ms to get the scheduler thread going
            long measureStart = t0 + (long)(measureOffset * Stopwatch.Frequency);
            long slot = SlotWidthNs(o, sim.Duration);
            var warm = new StatsSink(t0, slot);
            var sink = new StatsSink(measureStart, slot);
            long scheduled = 0, limitHits = 0;
            _live = new LiveView { Label = scenario.Name, Start = t0, MeasureStart = measureStart, Warmup = warm, Measured = sink, InFlight = () => sim.MaxInFlight - slots.CurrentCount };
            var cpuStartTask = SampleCpuAtAsync(measureStart, ct);

            async Task RunOne(long seq, long intended)
            {
                var instance = state.Rent();
                try
                {
                    long actual = Stopwatch.GetTimestamp();
                    StepResult r;
                    try
                    {
                        r = await instance.ExecuteAsync(ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (ct.IsCancellationRequested)
                    {
                        return;
                    }
                    long end = Stopwatch.GetTimestamp();
                    (intended >= measureStart ? sink : warm).Record(seq, intended, actual, end, r);
                }
                finally
                {
                    state.Return(instance);
                    slots.Release();
                }
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var scheduler = new Thread(() =>
            {
                try
                {
                    PreciseSleep.TuneCurrentThread();
                    for (long i = 0; !ct.IsCancellationRequested; i++)
                    {
                        double offset = OpenLoop.IntendedOffsetSeconds(i, sim.Rate, ramp);
                        if (offset >= totalSeconds) break;
                        long intended = t0 + (long)(offset * Stopwatch.Frequency);
                        PreciseSleep.Until(intended, ct);
                        if (!slots.Wait(0))
                        {
                            Interlocked.Increment(ref limitHits);
                            slots.Wait(ct);
                        }
                        if (intended >= measureStart) scheduled++;
                        long seq = i;
                        ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.run(s.seq, s.intended), (run: (Func<long, long, Task>)RunOne, seq, intended), preferLocal: false);
                    }
                    done.TrySetResult();
                }
                catch (OperationCanceledException)
                {
                    done.TrySetResult();
                }
                catch (Exception e)
                {
                    done.TrySetException(e);
                }
            })
            { IsBackground = true, Name = "open-loop-scheduler", Priority = ThreadPriority.AboveNormal };
            scheduler.Start();
            await done.Task.ConfigureAwait(false);

            // drain: wait for in-flight iterations to finish
            var drainDeadline = Stopwatch.GetTimestamp() + Ticks(o.DrainTimeout);
            while (slots.CurrentCount < sim.MaxInFlight && Stopwatch.GetTimestamp() < drainDeadline && !ct.IsCancellationRequested)
                await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
            long unfinished = sim.MaxInFlight - slots.CurrentCount;

            var cpuStart = await cpuStartTask.ConfigureAwait(false);
            var cpuEnd = CpuSample.Take();
            var stats = sink.Snapshot();
            long last = Math.Max(stats.Requests > 0 ? stats.LastEnd : 0, measureStart + Ticks(sim.Duration));
            return new PhaseResult
            {
                Scenario = scenario.Name,
                Target = scenario.Target,
                Simulation = sim,
                Stats = stats,
                MeasureStart = measureStart,
                WallSeconds = (last - measureStart) / (double)Stopwatch.Frequency,
                Cpu = CpuUsage.Between(cpuStart, cpuEnd),
                Scheduled = scheduled,
                Unfinished = unfinished,
                InFlightLimitHits = limitHits,
                WarmupSamples = warm.Completed,
            };
        }
        finally
        {
            _live = null;
            // instances still in flight after a drain timeout are left to their own timeouts
            if (slots.CurrentCount == sim.MaxInFlight)
                foreach (var i in state.All) i.Dispose();
        }
    }
}
