namespace Mesh.LoadTests.Metrics;

/// <summary>
/// Completions over time in a fixed number of slots: each slot counts ok / failed completions and
/// keeps a coarse latency histogram (P = 4, ≤ 3.2% error) for per-interval percentiles. When a
/// sample falls past the last slot, adjacent slots are merged pairwise and the slot width doubles,
/// so memory stays bounded (≤ Capacity slot histograms) however long the run is.
/// Not thread-safe: callers serialise access.
/// </summary>
public sealed class TimeSeries
{
    public const int SlotPrecisionBits = 4;
    private readonly Slot?[] _slots;

    public TimeSeries(long slotWidthNs, int capacity = 120)
    {
        if (slotWidthNs <= 0) throw new ArgumentOutOfRangeException(nameof(slotWidthNs));
        if (capacity < 2 || capacity % 2 != 0) throw new ArgumentOutOfRangeException(nameof(capacity));
        SlotWidthNs = slotWidthNs;
        _slots = new Slot?[capacity];
    }

    public long SlotWidthNs { get; private set; }
    public int Capacity => _slots.Length;

    public sealed class Slot
    {
        public long Ok;
        public long Failed;
        public readonly LatencyHistogram Latency = new(SlotPrecisionBits);
    }

    /// <param name="offsetNs">completion time relative to the series' origin</param>
    public void Record(long offsetNs, long latencyNs, bool ok)
    {
        if (offsetNs < 0) offsetNs = 0;
        long index = offsetNs / SlotWidthNs;
        while (index >= _slots.Length)
        {
            Coarsen();
            index = offsetNs / SlotWidthNs;
        }
        var slot = _slots[index] ??= new Slot();
        if (ok) slot.Ok++; else slot.Failed++;
        slot.Latency.Record(latencyNs);
    }

    private void Coarsen()
    {
        for (int i = 0; i < _slots.Length / 2; i++)
        {
            var a = _slots[2 * i];
            var b = _slots[2 * i + 1];
            _slots[2 * i] = null;
            _slots[2 * i + 1] = null;
            _slots[i] = MergeSlots(a, b);
        }
        for (int i = _slots.Length / 2; i < _slots.Length; i++) _slots[i] = null;
        SlotWidthNs *= 2;
    }

    private static Slot? MergeSlots(Slot? a, Slot? b)
    {
        if (a is null) return b;
        if (b is null) return a;
        a.Ok += b.Ok;
        a.Failed += b.Failed;
        a.Latency.Add(b.Latency);
        return a;
    }

    /// <summary>Adds another series with the same origin (coarsening whichever is finer).</summary>
    public void Add(TimeSeries other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Capacity != Capacity) throw new ArgumentException("capacities differ", nameof(other));
        while (SlotWidthNs < other.SlotWidthNs) Coarsen();
        var src = other;
        if (other.SlotWidthNs < SlotWidthNs)
        {
            src = other.Clone();
            while (src.SlotWidthNs < SlotWidthNs) src.Coarsen();
        }
        if (src.SlotWidthNs != SlotWidthNs) throw new ArgumentException("slot widths are not powers-of-two multiples", nameof(other));
        for (int i = 0; i < _slots.Length; i++)
        {
            var s = src._slots[i];
            if (s is null) continue;
            var d = _slots[i] ??= new Slot();
            d.Ok += s.Ok;
            d.Failed += s.Failed;
            d.Latency.Add(s.Latency);
        }
    }

    public TimeSeries Clone()
    {
        var c = new TimeSeries(SlotWidthNs, Capacity);
        for (int i = 0; i < _slots.Length; i++)
        {
            var s = _slots[i];
            if (s is null) continue;
            var d = c._slots[i] = new Slot { Ok = s.Ok, Failed = s.Failed };
            d.Latency.Add(s.Latency);
        }
        return c;
    }

    /// <summary>Slots up to the last non-empty one (empty slots inside the range are returned as zero).</summary>
    public IReadOnlyList<(long StartNs, Slot Slot)> Slots()
    {
        int last = -1;
        for (int i = 0; i < _slots.Length; i++) if (_slots[i] is not null) last = i;
        var list = new List<(long, Slot)>(last + 1);
        for (int i = 0; i <= last; i++) list.Add((i * SlotWidthNs, _slots[i] ?? new Slot()));
        return list;
    }
}
