using FsCheck;
using FsCheck.Fluent;
using Mesh.LoadTests.Metrics;

namespace Mesh.LoadTests.Tests;

public class HistogramTests
{
    private static readonly double[] Percentiles = [0, 1, 25, 50, 75, 90, 99, 99.9, 99.99, 100];

    /// <summary>Nearest-rank percentile of a sorted array: the definition the histogram approximates.</summary>
    internal static long Exact(long[] sorted, double q)
    {
        if (q >= 100) return sorted[^1];
        long rank = Math.Max(1, (long)Math.Ceiling(q / 100.0 * sorted.Length));
        return sorted[rank - 1];
    }

    private static void AssertWithinError(LatencyHistogram h, long[] values)
    {
        var sorted = (long[])values.Clone();
        Array.Sort(sorted);
        foreach (var q in Percentiles)
        {
            long exact = Exact(sorted, q);
            long approx = h.ValueAtPercentile(q);
            double bound = exact * h.MaxRelativeError;
            Assert.True(Math.Abs(approx - exact) <= bound,
                $"p{q}: histogram {approx}, exact {exact}, allowed ±{bound:0.###} ({values.Length} samples)");
        }
        Assert.Equal(sorted[0], h.Min);
        Assert.Equal(sorted[^1], h.Max);
        Assert.Equal(values.Length, h.Count);
    }

    // latencies from 1 ns to ~1 h, log-uniform so every octave is exercised
    private static readonly Gen<long> LatencyGen =
        Gen.Zip(Gen.Choose(0, 41), Gen.Choose(0, 1_000_000)).Select(t => (long)(Math.Pow(2, t.Item1) * (1 + t.Item2 / 1_000_000.0)));

    [Fact]
    public void Percentiles_are_within_the_stated_relative_error_of_a_sorted_array()
    {
        var arb = Gen.NonEmptyListOf(LatencyGen).Select(l => l.ToArray()).ToArbitrary();
        var property = Prop.ForAll(arb, values =>
        {
            var h = new LatencyHistogram();
            foreach (var v in values) h.Record(v);
            AssertWithinError(h, values);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), property);
    }

    [Fact]
    public void Clustered_values_stay_within_error_too()
    {
        // many near-identical values (a real latency distribution) — percentiles land inside one octave
        var arb = Gen.Zip(Gen.Choose(1000, 5_000_000), Gen.ArrayOf(Gen.Choose(0, 2000))).Select(t => t.Item2.Select(d => (long)t.Item1 + d).ToArray())
            .Where(a => a.Length > 0).ToArbitrary();
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.ForAll(arb, values =>
        {
            var h = new LatencyHistogram();
            foreach (var v in values) h.Record(v);
            AssertWithinError(h, values);
        }));
    }

    [Fact]
    public void Relative_error_bound_is_at_most_one_percent()
    {
        var h = new LatencyHistogram();
        Assert.True(h.MaxRelativeError <= 0.01);
        Assert.Equal(1.0 / 256, h.MaxRelativeError);
        // every bucket: its width relative to its lower bound is ≤ 2^-P
        for (int i = 128; i < h.BucketCount; i += 7)
            Assert.True(h.BucketWidth(i) / (double)h.LowerBound(i) <= 1.0 / 128 + 1e-12, $"bucket {i}");
    }

    [Fact]
    public void Bucket_layout_is_consistent()
    {
        var h = new LatencyHistogram();
        for (int i = 0; i < h.BucketCount; i++)
        {
            long lo = h.LowerBound(i);
            long hi = lo + h.BucketWidth(i) - 1;
            Assert.Equal(i, h.IndexOf(lo));
            Assert.Equal(i, h.IndexOf(hi));
            if (i + 1 < h.BucketCount) Assert.Equal(hi + 1, h.LowerBound(i + 1));
        }
        Assert.Equal(h.BucketCount - 1, h.IndexOf(h.HighestTrackable));
    }

    [Fact]
    public void Merging_equals_recording_everything_in_one()
    {
        var arb = Gen.Zip(Gen.ArrayOf(LatencyGen), Gen.Choose(1, 8)).ToArbitrary();
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.ForAll(arb, t =>
        {
            var (values, parts) = t;
            var whole = new LatencyHistogram();
            var pieces = Enumerable.Range(0, parts).Select(_ => new LatencyHistogram()).ToArray();
            for (int i = 0; i < values.Length; i++)
            {
                whole.Record(values[i]);
                pieces[i % parts].Record(values[i]);
            }
            var merged = new LatencyHistogram();
            foreach (var p in pieces) merged.Add(p);
            Assert.Equal(whole.Count, merged.Count);
            Assert.Equal(whole.NonEmptyBuckets().ToArray(), merged.NonEmptyBuckets().ToArray());
            if (values.Length > 0)
            {
                Assert.Equal(whole.Min, merged.Min);
                Assert.Equal(whole.Max, merged.Max);
                Assert.Equal(whole.Sum, merged.Sum, 6);
                foreach (var q in Percentiles) Assert.Equal(whole.ValueAtPercentile(q), merged.ValueAtPercentile(q));
            }
        }));
    }

    [Fact]
    public void Millions_of_samples_in_fixed_memory()
    {
        const int n = 3_000_000;
        var rng = new Random(42);
        var values = new long[n];
        for (int i = 0; i < n; i++) values[i] = (long)(50_000 * Math.Exp(rng.NextDouble() * 6)); // 50 µs .. 20 ms, log-uniform

        var h = new LatencyHistogram();
        int buckets = h.BucketCount;
        h.Record(1); // warm the JIT path
        h.Reset();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < n; i++) h.Record(values[i]);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(buckets, h.BucketCount);
        Assert.True(buckets * sizeof(long) <= 40 * 1024, $"{buckets} buckets");
        AssertWithinError(h, values);
    }

    [Fact]
    public void Edge_cases()
    {
        var h = new LatencyHistogram();
        Assert.Equal(0, h.ValueAtPercentile(50));
        h.Record(-5); // a clock step backwards is recorded as 0, not thrown
        Assert.Equal(0, h.Max);
        h.Reset();
        h.Record(long.MaxValue);
        Assert.Equal(1, h.Clamped);
        Assert.Equal(long.MaxValue, h.Max);
        Assert.Equal(long.MaxValue, h.ValueAtPercentile(100));
        h.Reset();
        h.Record(123_456_789);
        foreach (var q in Percentiles) Assert.Equal(123_456_789, h.ValueAtPercentile(q)); // clamped to [min, max]
        Assert.Throws<ArgumentException>(() => new LatencyHistogram().Add(new LatencyHistogram(precisionBits: 4)));
    }

    [Fact]
    public void Sparse_buckets_round_trip()
    {
        var h = new LatencyHistogram();
        var rng = new Random(7);
        for (int i = 0; i < 10_000; i++) h.Record(rng.NextInt64(1, 10_000_000_000));
        var back = LatencyHistogram.FromBuckets(h.PrecisionBits, h.MaxExponent, h.NonEmptyBuckets(), h.Min, h.Max);
        Assert.Equal(h.NonEmptyBuckets().ToArray(), back.NonEmptyBuckets().ToArray());
        foreach (var q in Percentiles) Assert.Equal(h.ValueAtPercentile(q), back.ValueAtPercentile(q));
    }

    [Fact]
    public void Time_series_keeps_counts_when_it_coarsens_and_merges()
    {
        var a = new TimeSeries(slotWidthNs: 1_000_000, capacity: 8);
        var b = new TimeSeries(slotWidthNs: 1_000_000, capacity: 8);
        for (int i = 0; i < 100; i++) a.Record(i * 1_000_000L, 1000 + i, ok: i % 10 != 0); // 100 ms of data into 8 × 1 ms slots
        for (int i = 0; i < 5; i++) b.Record(i * 1_000_000L, 5, ok: true);
        Assert.Equal(16_000_000, a.SlotWidthNs);
        Assert.Equal(100, a.Slots().Sum(s => s.Slot.Ok + s.Slot.Failed));
        Assert.Equal(10, a.Slots().Sum(s => s.Slot.Failed));
        a.Add(b);
        Assert.Equal(105, a.Slots().Sum(s => s.Slot.Ok + s.Slot.Failed));
        Assert.True(a.Slots().Count <= 8);
    }
}
