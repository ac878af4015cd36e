using System.Net;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Health;

/// <summary>
/// The health port's own listener, apart from the API's web host: nothing of the API (routes, authentication) is
/// reachable through it, and an advertise address the node does not hold (yet, or behind NAT) costs the health port
/// alone, retried with backoff, instead of stopping the daemon.
/// </summary>
public sealed partial class HealthPortServer(DaemonOptions options, LocalTaskCounts counts, ILogger<HealthPortServer> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var retry = TimeSpan.FromSeconds(1);
        string? lastFailure = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Parse(options.AdvertiseAddress), options.HealthPort));
            await using var app = builder.Build();
            app.Run(ctx => HealthPort.AnswerAsync(ctx, counts, options.Node));
            try
            {
                await app.StartAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                if (e.Message != lastFailure)
                {
                    lastFailure = e.Message;
                    LogCannotListen(options.AdvertiseAddress, options.HealthPort, e.InnerException?.Message ?? e.Message);
                }

                await Task.Delay(retry, stoppingToken).ConfigureAwait(false);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                continue;
            }

            LogListening(options.AdvertiseAddress, options.HealthPort);
            try
            {
                await Task.Delay(Timeout.Infinite, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // the daemon stops
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Health port listening on {Address}:{Port} (GET /services/NAME)")]
    private partial void LogListening(string address, int port);

    [LoggerMessage(Level = LogLevel.Error, Message = "Health port cannot listen on {Address}:{Port}: {Reason}; retrying (the rest of the daemon runs)")]
    private partial void LogCannotListen(string address, int port, string reason);
}
