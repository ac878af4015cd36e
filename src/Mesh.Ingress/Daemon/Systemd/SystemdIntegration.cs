using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace Mesh.Ingress.Daemon.Systemd;

/// <summary>Running under systemd: its log format and the notifications of <see cref="SystemdNotifications"/>.</summary>
public static class SystemdIntegration
{
    public static void UseMeshSystemd(this WebApplicationBuilder builder)
    {
        // Under systemd (its parent is systemd): journal-friendly log lines and the notifier. Its lifetime would send
        // READY=1 as soon as the host has started, before the node is converged, so it is taken out again and the
        // host's default lifetime (SIGTERM → graceful stop) stays; readiness is ours.
        builder.Host.UseSystemd();
        foreach (var lifetime in builder.Services.Where(d => d.ServiceType == typeof(IHostLifetime) && d.ImplementationType == typeof(SystemdLifetime)).ToList())
        {
            builder.Services.Remove(lifetime);
        }

        // Not only under a parent named systemd: NOTIFY_SOCKET is the protocol (as sd_notify reads it), so any
        // supervisor that sets it, and the tests, get the same notifications.
        builder.Services.TryAddSingleton<ISystemdNotifier, SystemdNotifier>();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<SyncLoopLiveness>();
        var watchdog = Watchdog.FromEnvironment(Environment.GetEnvironmentVariable, Environment.ProcessId);
        builder.Services.AddHostedService(sp => new SystemdNotifications(
            sp.GetRequiredService<ISystemdNotifier>(),
            watchdog,
            sp.GetRequiredService<SyncLoopLiveness>(),
            sp.GetRequiredService<NodeStatus>(),
            sp.GetRequiredService<DaemonOptions>(),
            sp.GetRequiredService<IHostApplicationLifetime>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<SystemdNotifications>>()));
    }
}
