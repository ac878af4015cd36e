using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Mesh.LoadTests.Core;

/// <summary>
/// Sub-millisecond sleeping for the open-loop scheduler thread: Linux clock_nanosleep with the
/// thread's timer slack lowered to 1 µs (prctl PR_SET_TIMERSLACK), so the scheduler wakes within
/// tens of microseconds of a send's intended time without burning a core spinning. Falls back to
/// Thread.Sleep + a short spin elsewhere.
/// </summary>
internal static partial class PreciseSleep
{
    private const int ClockMonotonic = 1;
    private const int PrSetTimerSlack = 29; // linux/prctl.h

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    private static partial int ClockNanosleep(int clockId, int flags, ref Timespec request, IntPtr remaining);

    [LibraryImport("libc", EntryPoint = "prctl")]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    private static bool _native = OperatingSystem.IsLinux();

    /// <summary>False once the libc calls turned out to be unavailable.</summary>
    public static bool IsNative => _native;

    /// <summary>Call once on the thread that will sleep.</summary>
    public static void TuneCurrentThread()
    {
        if (!_native) return;
        try { _ = Prctl(PrSetTimerSlack, 1000, 0, 0, 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { _native = false; }
    }

    /// <summary>Blocks until the Stopwatch timestamp <paramref name="deadline"/> (or cancellation).</summary>
    public static void Until(long deadline, CancellationToken ct)
    {
        const long maxChunkNs = 50_000_000; // wake at least every 50 ms to observe cancellation
        while (!ct.IsCancellationRequested)
        {
            long remainingNs = Metrics.StatsSink.TicksToNs(deadline - Stopwatch.GetTimestamp());
            if (remainingNs <= 0) return;
            long chunk = Math.Min(remainingNs, maxChunkNs);
            if (_native)
            {
                var ts = new Timespec { Seconds = chunk / 1_000_000_000, Nanoseconds = chunk % 1_000_000_000 };
                try
                {
                    _ = ClockNanosleep(ClockMonotonic, 0, ref ts, IntPtr.Zero);
                    continue;
                }
                catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
                {
                    _native = false;
                }
            }
            if (chunk > 2_000_000) Thread.Sleep((int)(chunk / 1_000_000) - 1);
            else Thread.SpinWait(50);
        }
    }
}
