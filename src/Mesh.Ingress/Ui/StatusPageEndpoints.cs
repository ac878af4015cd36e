using System.Security.Cryptography.X509Certificates;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Ui;

/// <summary>
/// The status page: <c>GET /ui</c> (one self-contained HTML page) and <c>GET /ui/events</c> (its live snapshots), on the
/// API's listeners behind the API's authentication, read-only. Call after <c>UseApiAuthentication</c>.
/// </summary>
public static class StatusPageEndpoints
{
    public static void MapMeshUi(this WebApplication app)
    {
        var options = app.Services.GetService<StatusPageOptions>() ?? new StatusPageOptions();
        var clock = app.Services.GetService<TimeProvider>() ?? TimeProvider.System;
        var peers = new PeerLiveness(clock);
        var builder = new StatusSnapshotBuilder(app.Services.GetRequiredService<NodeStatus>(), peers, clock);
        var stream = new StatusEventStream(
            app.Services.GetRequiredService<IClusterStore>(),
            builder,
            new SseClientSlots(options.MaxClients),
            options,
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Mesh.Ui"));
        var stopping = app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;

        // Joined daemons call this one with their node certificate: their requests are how it knows they are alive.
        // Only what a daemon's store client asks counts (not a browser or the CLI that happens to hold a node certificate).
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path;
            var node = context.Connection.ClientCertificate?.GetNameInfo(X509NameType.SimpleName, false);
            if (string.IsNullOrEmpty(node) || !(path.Equals("/v1/watch", StringComparison.Ordinal) || path.Equals("/v1/state", StringComparison.Ordinal)))
            {
                await next(context).ConfigureAwait(false);
                return;
            }

            var watch = path.Equals("/v1/watch", StringComparison.Ordinal);
            var request = peers.Begin(node, watch ? context.Request.Query["after"].FirstOrDefault() : null);
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                request.End(aborted: context.RequestAborted.IsCancellationRequested);
            }
        });

        app.MapGet("/ui", (HttpContext context) =>
        {
            StatusPage.AddHeaders(context.Response.Headers);
            return Results.Bytes(StatusPage.Html, "text/html; charset=utf-8");
        });
        app.MapGet("/ui/events", (HttpContext context) => stream.ServeAsync(context, stopping));
    }
}
