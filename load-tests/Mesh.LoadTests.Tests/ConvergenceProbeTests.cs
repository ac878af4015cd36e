using Mesh.LoadTests.Lab;
using Xunit;

namespace Mesh.LoadTests.Tests;

/// <summary>
/// The convergence scenario's probes: each cycle makes its own, so a probe's thread must end when the cycle does and
/// must not run while disarmed (after 70 cycles the leaked threads, each waking every 2 ms, took both cores and
/// inflated the very latencies being measured).
/// </summary>
public class ConvergenceProbeTests
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(5);

    [Fact]
    public async Task A_probe_checks_only_while_armed_and_its_thread_ends_when_disposed()
    {
        var checks = 0;
        var seen = false;
        var probe = Convergence.Probe.Of("test", () => { Interlocked.Increment(ref checks); return Volatile.Read(ref seen); }, Poll);

        await Task.Delay(100);
        Assert.Equal(0, Volatile.Read(ref checks)); // never armed: no attempt

        probe.Arm(want: true);
        await Task.Delay(50);
        Assert.False(probe.Satisfied);
        Volatile.Write(ref seen, true);
        await probe.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(probe.Satisfied);

        // satisfied and disarmed: the thread sleeps, it does not poll
        var atRest = Volatile.Read(ref checks);
        await Task.Delay(100);
        Assert.Equal(atRest, Volatile.Read(ref checks));

        probe.Dispose();
        Assert.True(probe.Ended(TimeSpan.FromSeconds(5)), "the probe's thread still runs after Dispose");
    }

    [Fact]
    public void A_probe_disposed_while_armed_ends_after_its_attempt()
    {
        var probe = Convergence.Probe.Of("armed", () => false, Poll);
        probe.Arm(want: true);
        Thread.Sleep(30);
        Assert.False(probe.Ended(TimeSpan.Zero));

        probe.Dispose();
        Assert.True(probe.Ended(TimeSpan.FromSeconds(5)), "the probe's thread still runs after Dispose");
    }
}
