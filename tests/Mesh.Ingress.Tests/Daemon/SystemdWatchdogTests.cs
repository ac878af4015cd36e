using System.Collections.Concurrent;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Daemon.Systemd;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Daemon;

/// <summary>When the daemon pings systemd's watchdog and says READY, with real time and short intervals.</summary>
public sealed class SystemdWatchdogTests
{
    [Theory]
    [InlineData("2000000", null, 1000)]
    [InlineData("2000000", "4242", 1000)]  // WATCHDOG_PID is this process
    [InlineData("2000000", "1", null)]     // another process is the watched one
    [InlineData("0", null, null)]
    [InlineData("-5", null, null)]
    [InlineData("soon", null, null)]
    [InlineData(null, null, null)]
    public void The_watchdog_is_read_as_sd_watchdog_enabled_reads_it(string? usec, string? pid, int? pingMs)
    {
        var environment = new Dictionary<string, string?> { ["WATCHDOG_USEC"] = usec, ["WATCHDOG_PID"] = pid };
        var dog = Watchdog.FromEnvironment(n => environment.GetValueOrDefault(n), processId: 4242);
        Assert.Equal(pingMs, (int?)dog?.PingInterval.TotalMilliseconds);
    }

    [Fact]
    public async Task Pings_stop_while_the_sync_loop_is_silent_and_ready_waits_for_a_converged_pass()
    {
        var notifier = new RecordingNotifier();
        var liveness = new SyncLoopLiveness(TimeProvider.System);
        var options = new DaemonOptions
        {
            Node = "n1",
            AdvertiseAddress = "198.18.0.11",
            ResyncInterval = TimeSpan.FromMilliseconds(400),
            CommandTimeout = TimeSpan.FromMilliseconds(200),
            MinSyncInterval = TimeSpan.Zero,
        };
        var lifetime = new Lifetime();
        using var service = new SystemdNotifications(notifier, new Watchdog(TimeSpan.FromMilliseconds(100)), liveness,
            new NodeStatus { Node = "n1", Store = "embedded", Dataplane = "nftables" }, options, lifetime, NullLogger<SystemdNotifications>.Instance);
        await service.StartAsync(CancellationToken.None);

        // A failing pass: alive, not ready.
        liveness.PassEnded(converged: false);
        Assert.True(await EventuallyAsync(() => notifier.Count("WATCHDOG=1") >= 2), $"pings: {notifier.Count("WATCHDOG=1")}");
        Assert.Equal(0, notifier.Count("READY=1"));

        // Silent past the stall limit (600 ms): the pings stop, once, with a STATUS saying why.
        await Task.Delay(900);
        var pings = notifier.Count("WATCHDOG=1");
        await Task.Delay(400);
        Assert.Equal(pings, notifier.Count("WATCHDOG=1"));
        Assert.Equal(1, notifier.Count("STATUS=Sync loop stalled"));

        // A converged pass: READY, and the pings resume.
        liveness.PassEnded(converged: true);
        Assert.True(await EventuallyAsync(() => notifier.Count("WATCHDOG=1") >= pings + 2), $"pings: {notifier.Count("WATCHDOG=1")}, before {pings}");
        Assert.Equal(1, notifier.Count("READY=1"));

        lifetime.Stop();
        Assert.Equal(1, notifier.Count("STOPPING=1"));
        await service.StopAsync(CancellationToken.None);
    }

    /// <summary>Pings every 100 ms: on a loaded 2-core machine a fixed 300 ms wait saw one (a full run's load).</summary>
    private static async Task<bool> EventuallyAsync(Func<bool> condition)
    {
        for (var waited = 0; waited < 3000 && !condition(); waited += 20)
        {
            await Task.Delay(20);
        }

        return condition();
    }

    private sealed class RecordingNotifier : ISystemdNotifier
    {
        private readonly ConcurrentQueue<string> _messages = new();

        public bool IsEnabled => true;

        public void Notify(ServiceState state) => _messages.Enqueue(state.ToString());

        public int Count(string prefix) => _messages.Count(m => m.StartsWith(prefix, StringComparison.Ordinal));
    }

    private sealed class Lifetime : IHostApplicationLifetime
    {
        private readonly CancellationTokenSource _stopping = new();

        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => _stopping.Token;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication() => Stop();

        public void Stop() => _stopping.Cancel();
    }
}
