using System.Diagnostics;

namespace Mesh.LoadTests.Metrics;

/// <summary>The outcome of one step execution.</summary>
/// <param name="Ok">counted as a success</param>
/// <param name="Status">protocol status when a response arrived ("200", "NOERROR", "connected", ...), else null</param>
/// <param name="Error">error kind when no usable response arrived ("timeout", "socket:ConnectionRefused", ...), else null</param>
/// <param name="Bytes">payload bytes received</param>
public readonly record struct StepResult(bool Ok, string? Status, string? Error, long Bytes = 0)
{
    public static StepResult Success(string status, long bytes = 0) => new(true, status, null, bytes);
    public static StepResult BadStatus(string status, long bytes = 0) => new(false, status, null, bytes);
    public static StepResult Failure(string error) => new(false, null, error);
}

/// <summary>
/// Thread-safe sample sink: a few lock-protected stripes, each with its own histograms, time
/// series and counters, merged by <see cref="Snapshot"/>. Callers pass a stripe hint (the virtual
/// user's index, or the open-loop sequence number) so concurrent recorders rarely share a lock.
/// Memory is fixed by the stripe count, not by the number of samples.
/// </summary>
public sealed class StatsSink
{
    private readonly Stripe[] _stripes;

    public StatsSink(long originTimestamp, long seriesSlotWidthNs, int stripes = 0)
    {
        OriginTimestamp = originTimestamp;
        if (stripes <= 0) stripes = Math.Max(2, Environment.ProcessorCount * 2);
        _stripes = new Stripe[stripes];
        for (int i = 0; i < stripes; i++) _stripes[i] = new Stripe(seriesSlotWidthNs);
    }

    /// <summary>Stopwatch timestamp the time series is relative to.</summary>
    public long OriginTimestamp { get; }

    private sealed class Stripe(long slotWidthNs)
    {
        public readonly LatencyHistogram Latency = new();
        public readonly LatencyHistogram ServiceTime = new();
        public readonly LatencyHistogram SendLag = new();
        public readonly TimeSeries Series = new(slotWidthNs);
        public readonly Dictionary<string, long> Statuses = new(StringComparer.Ordinal);
        public readonly Dictionary<string, long> Errors = new(StringComparer.Ordinal);
        public long Ok;
        public long Failed;
        public long Bytes;
        public long Completed; // read without the lock by the progress line
        public long FirstStart = long.MaxValue;
        public long LastEnd = long.MinValue;
    }

    public static long TicksToNs(long ticks) =>
        Stopwatch.Frequency == 1_000_000_000 ? ticks : (long)(ticks * (1e9 / Stopwatch.Frequency));

    /// <summary>
    /// Records one sample. Latency is measured from <paramref name="intendedStart"/> (the time the
    /// request was due: coordinated-omission-free for open loops), service time from
    /// <paramref name="actualStart"/>. All three are Stopwatch timestamps.
    /// </summary>
    public void Record(long stripeHint, long intendedStart, long actualStart, long end, in StepResult result)
    {
        var s = _stripes[(int)((ulong)stripeHint % (ulong)_stripes.Length)];
        long latency = TicksToNs(end - intendedStart);
        long service = TicksToNs(end - actualStart);
        long offset = TicksToNs(end - OriginTimestamp);
        lock (s)
        {
            s.Latency.Record(latency);
            s.ServiceTime.Record(service);
            s.SendLag.Record(TicksToNs(actualStart - intendedStart));
            s.Series.Record(offset, latency, result.Ok);
            if (result.Ok) s.Ok++; else s.Failed++;
            s.Bytes += result.Bytes;
            if (result.Status is { } st) Increment(s.Statuses, st);
            if (result.Error is { } er) Increment(s.Errors, er);
            if (intendedStart < s.FirstStart) s.FirstStart = intendedStart;
            if (end > s.LastEnd) s.LastEnd = end;
            Volatile.Write(ref s.Completed, s.Completed + 1);
        }
    }

    private static void Increment(Dictionary<string, long> d, string key)
    {
        System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(d, key, out _)++;
    }

    /// <summary>Completed samples so far (racy read, for progress display).</summary>
    public long Completed
    {
        get
        {
            long n = 0;
            foreach (var s in _stripes) n += Volatile.Read(ref s.Completed);
            return n;
        }
    }

    public long FailedApprox
    {
        get
        {
            long n = 0;
            foreach (var s in _stripes) n += Volatile.Read(ref s.Failed);
            return n;
        }
    }

    public StatsSnapshot Snapshot()
    {
        var snap = new StatsSnapshot(_stripes[0].Series.SlotWidthNs);
        foreach (var s in _stripes)
        {
            lock (s)
            {
                snap.Latency.Add(s.Latency);
                snap.ServiceTime.Add(s.ServiceTime);
                snap.SendLag.Add(s.SendLag);
                snap.Series.Add(s.Series);
                snap.Ok += s.Ok;
                snap.Failed += s.Failed;
                snap.Bytes += s.Bytes;
                foreach (var kv in s.Statuses) snap.Statuses[kv.Key] = snap.Statuses.GetValueOrDefault(kv.Key) + kv.Value;
                foreach (var kv in s.Errors) snap.Errors[kv.Key] = snap.Errors.GetValueOrDefault(kv.Key) + kv.Value;
                if (s.FirstStart < snap.FirstStart) snap.FirstStart = s.FirstStart;
                if (s.LastEnd > snap.LastEnd) snap.LastEnd = s.LastEnd;
            }
        }
        return snap;
    }
}

/// <summary>Merged, immutable-by-convention view of a sink (also the unit that merges across rounds).</summary>
public sealed class StatsSnapshot(long seriesSlotWidthNs)
{
    public LatencyHistogram Latency { get; } = new();
    public LatencyHistogram ServiceTime { get; } = new();
    /// <summary>Actual send time minus intended send time (open loop scheduler lag; 0 in closed loops).</summary>
    public LatencyHistogram SendLag { get; } = new();
    public TimeSeries Series { get; } = new(seriesSlotWidthNs);
    public Dictionary<string, long> Statuses { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, long> Errors { get; } = new(StringComparer.Ordinal);
    public long Ok { get; set; }
    public long Failed { get; set; }
    public long Bytes { get; set; }
    public long FirstStart { get; set; } = long.MaxValue;
    public long LastEnd { get; set; } = long.MinValue;
    public long Requests => Ok + Failed;

    public void Add(StatsSnapshot other)
    {
        Latency.Add(other.Latency);
        ServiceTime.Add(other.ServiceTime);
        SendLag.Add(other.SendLag);
        Ok += other.Ok;
        Failed += other.Failed;
        Bytes += other.Bytes;
        foreach (var kv in other.Statuses) Statuses[kv.Key] = Statuses.GetValueOrDefault(kv.Key) + kv.Value;
        foreach (var kv in other.Errors) Errors[kv.Key] = Errors.GetValueOrDefault(kv.Key) + kv.Value;
        FirstStart = Math.Min(FirstStart, other.FirstStart);
        LastEnd = Math.Max(LastEnd, other.LastEnd);
    }
}
