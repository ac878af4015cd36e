using System.Diagnostics;

namespace Mesh.LoadTests.Core;

/// <summary>A point-in-time reading of this process's CPU time and the machine's busy time.</summary>
public readonly record struct CpuSample(long Timestamp, TimeSpan ProcessCpu, long MachineBusyJiffies, long MachineTotalJiffies)
{
    public static CpuSample Take()
    {
        var (busy, total) = ReadProcStat();
        return new CpuSample(Stopwatch.GetTimestamp(), Environment.CpuUsage.TotalTime, busy, total);
    }

    private static (long Busy, long Total) ReadProcStat()
    {
        try
        {
            using var reader = new StreamReader("/proc/stat");
            var line = reader.ReadLine();
            if (line is null || !line.StartsWith("cpu ", StringComparison.Ordinal)) return (0, 0);
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long total = 0, idle = 0;
            for (int i = 1; i < parts.Length && i <= 8; i++) // user nice system idle iowait irq softirq steal
            {
                long v = long.Parse(parts[i], System.Globalization.CultureInfo.InvariantCulture);
                total += v;
                if (i is 4 or 5) idle += v;
            }
            return (total - idle, total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return (0, 0);
        }
    }
}

/// <summary>CPU use over an interval: the generator's own share, and the whole machine's.</summary>
public sealed record CpuUsage(double WallSeconds, double ProcessCpuSeconds, int Cores, double MachineBusyFraction)
{
    /// <summary>Cores' worth of CPU the generator used (process CPU time / wall time).</summary>
    public double GeneratorCores => WallSeconds <= 0 ? 0 : ProcessCpuSeconds / WallSeconds;
    /// <summary>Generator CPU as a fraction of all the machine's cores.</summary>
    public double GeneratorFraction => Cores <= 0 ? 0 : GeneratorCores / Cores;

    public static CpuUsage Between(CpuSample a, CpuSample b)
    {
        double wall = (b.Timestamp - a.Timestamp) / (double)Stopwatch.Frequency;
        double cpu = (b.ProcessCpu - a.ProcessCpu).TotalSeconds;
        long dt = b.MachineTotalJiffies - a.MachineTotalJiffies;
        double machine = dt <= 0 ? double.NaN : (b.MachineBusyJiffies - a.MachineBusyJiffies) / (double)dt;
        return new CpuUsage(wall, cpu, Environment.ProcessorCount, machine);
    }

    /// <summary>True when the generator used more than <paramref name="threshold"/> of its core budget.</summary>
    public bool Saturated(double coreBudget, double threshold = 0.9) => coreBudget > 0 && GeneratorCores > threshold * coreBudget;
}
