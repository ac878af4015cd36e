using System.Numerics;

namespace Mesh.LoadTests.Metrics;

/// <summary>
/// HDR-style log-linear histogram of non-negative integer values (the runner records nanoseconds).
/// <para>
/// Layout: values below 2^P are counted exactly (bucket = value). A value v ≥ 2^P with
/// m = floor(log2 v) falls in one of 2^P equal-width sub-buckets of [2^m, 2^(m+1)), each
/// 2^(m−P) wide. Reporting a bucket's midpoint is therefore off by less than half a bucket,
/// i.e. relative error &lt; 2^−(P+1): 0.39% for the default P = 7.
/// </para>
/// <para>
/// Memory is fixed at construction ((MaxExponent − P + 1) · 2^P counters; 36 KB for the
/// defaults) whatever the number of samples; values ≥ 2^MaxExponent are clamped into the top
/// bucket (counted in <see cref="Clamped"/>; <see cref="Max"/> stays exact). Two histograms with
/// the same layout merge by adding counters, so each worker records into its own and the results
/// are merged afterwards. Not thread-safe: callers serialise access.
/// </para>
/// </summary>
public sealed class LatencyHistogram
{
    public const int DefaultPrecisionBits = 7;
    /// <summary>2^42 ns ≈ 73 minutes: the largest latency tracked without clamping.</summary>
    public const int DefaultMaxExponent = 42;

    private readonly long[] _counts;
    private readonly int _subCount;

    public LatencyHistogram(int precisionBits = DefaultPrecisionBits, int maxExponent = DefaultMaxExponent)
    {
        if (precisionBits is < 1 or > 16) throw new ArgumentOutOfRangeException(nameof(precisionBits));
        if (maxExponent <= precisionBits || maxExponent > 62) throw new ArgumentOutOfRangeException(nameof(maxExponent));
        PrecisionBits = precisionBits;
        MaxExponent = maxExponent;
        _subCount = 1 << precisionBits;
        _counts = new long[(maxExponent - precisionBits + 1) * _subCount];
        Reset();
    }

    public int PrecisionBits { get; }
    public int MaxExponent { get; }
    public int BucketCount => _counts.Length;
    /// <summary>Upper bound of |reported − true| / true for any percentile: 2^−(P+1).</summary>
    public double MaxRelativeError => 1.0 / (1L << (PrecisionBits + 1));
    public long HighestTrackable => (1L << MaxExponent) - 1;

    public long Count { get; private set; }
    public long Min { get; private set; }
    public long Max { get; private set; }
    public long Clamped { get; private set; }
    /// <summary>Exact sum of the recorded values (before clamping), as a double to avoid overflow.</summary>
    public double Sum { get; private set; }
    public double SumOfSquares { get; private set; }

    public double Mean => Count == 0 ? 0 : Sum / Count;
    public double StdDev => Count < 2 ? 0 : Math.Sqrt(Math.Max(0, SumOfSquares / Count - Mean * Mean));

    public void Reset()
    {
        Array.Clear(_counts);
        Count = 0;
        Min = long.MaxValue;
        Max = 0;
        Clamped = 0;
        Sum = 0;
        SumOfSquares = 0;
    }

    public void Record(long value) => Record(value, 1);

    public void Record(long value, long count)
    {
        if (count <= 0) return;
        if (value < 0) value = 0;
        if (value < Min) Min = value;
        if (value > Max) Max = value;
        Sum += (double)value * count;
        SumOfSquares += (double)value * value * count;
        long v = value;
        if (v > HighestTrackable)
        {
            v = HighestTrackable;
            Clamped += count;
        }
        _counts[IndexOf(v)] += count;
        Count += count;
    }

    public int IndexOf(long value)
    {
        if (value < _subCount) return (int)value;
        int m = 63 - BitOperations.LeadingZeroCount((ulong)value);
        int shift = m - PrecisionBits;
        return ((shift + 1) << PrecisionBits) + (int)((value >> shift) - _subCount);
    }

    public long LowerBound(int index)
    {
        if (index < _subCount) return index;
        int shift = (index >> PrecisionBits) - 1;
        long sub = index & (_subCount - 1);
        return (_subCount + sub) << shift;
    }

    public long BucketWidth(int index) => index < _subCount ? 1 : 1L << ((index >> PrecisionBits) - 1);

    /// <summary>The value reported for a bucket: its midpoint (exact for width-1 buckets).</summary>
    public long Representative(int index) => LowerBound(index) + (BucketWidth(index) - 1) / 2;

    public long CountAt(int index) => _counts[index];

    /// <summary>
    /// Nearest-rank percentile (the value at rank ⌈q/100 · n⌉ of the sorted samples), within
    /// <see cref="MaxRelativeError"/> of the exact answer. q in [0, 100]; 100 gives the exact max.
    /// </summary>
    public long ValueAtPercentile(double q)
    {
        if (Count == 0) return 0;
        if (double.IsNaN(q)) throw new ArgumentOutOfRangeException(nameof(q));
        q = Math.Clamp(q, 0, 100);
        if (q >= 100) return Max;
        long rank = (long)Math.Ceiling(q / 100.0 * Count);
        if (rank < 1) rank = 1;
        if (rank > Count) rank = Count;
        long cumulative = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            cumulative += _counts[i];
            if (cumulative >= rank)
            {
                long rep = Representative(i);
                return Math.Clamp(rep, Min, Max);
            }
        }
        return Max;
    }

    /// <summary>Adds another histogram's counts (same layout required).</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.PrecisionBits != PrecisionBits || other.MaxExponent != MaxExponent)
            throw new ArgumentException("histogram layouts differ", nameof(other));
        if (other.Count == 0) return;
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        Clamped += other.Clamped;
        Sum += other.Sum;
        SumOfSquares += other.SumOfSquares;
        if (other.Min < Min) Min = other.Min;
        if (other.Max > Max) Max = other.Max;
    }

    public LatencyHistogram Clone()
    {
        var h = new LatencyHistogram(PrecisionBits, MaxExponent);
        h.Add(this);
        return h;
    }

    /// <summary>Non-empty buckets as (index, count): a compact, mergeable serialisation.</summary>
    public IEnumerable<(int Index, long Count)> NonEmptyBuckets()
    {
        for (int i = 0; i < _counts.Length; i++)
            if (_counts[i] != 0) yield return (i, _counts[i]);
    }

    /// <summary>Rebuilds a histogram from <see cref="NonEmptyBuckets"/> (min/max/sum approximated from buckets unless given).</summary>
    public static LatencyHistogram FromBuckets(int precisionBits, int maxExponent, IEnumerable<(int Index, long Count)> buckets,
        long? min = null, long? max = null)
    {
        var h = new LatencyHistogram(precisionBits, maxExponent);
        foreach (var (index, count) in buckets)
        {
            if (index < 0 || index >= h._counts.Length) throw new ArgumentOutOfRangeException(nameof(buckets));
            h.Record(h.Representative(index), count);
        }
        if (min is { } mn && h.Count > 0) h.Min = mn;
        if (max is { } mx && h.Count > 0) h.Max = mx;
        return h;
    }
}
