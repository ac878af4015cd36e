using System.Diagnostics;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Http.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;

namespace Mesh.Ingress.Http;

/// <summary>
/// The node's L7 entry: YARP on Kestrel, listening in the node's own namespace on <c>--http-port</c>, so the client's
/// address is the socket's peer (no DNAT, no SNAT on the way in), and connecting to tasks from inside the ingress
/// sandbox (<see cref="SandboxConnector"/>), over the same overlay as the L4 mesh. Its routes and clusters follow the
/// store: every revision is turned into a whole new configuration (<see cref="HttpRouteTable"/>) and swapped in
/// through YARP's in-memory provider; requests already running finish on the configuration they started with.
/// On <c>--https-port</c> (with <c>--certs-dir</c>) the same entry terminates TLS with each host's certificate picked
/// by SNI (<see cref="CertificateStore"/>); the task then sees X-Forwarded-Proto https.
/// A separate web host from the API's: its own port, no API authentication, and a failure to bind it (the port
/// taken) is retried and logged without touching the API or the L4 dataplane.
/// </summary>
public sealed partial class HttpEntry(
    IClusterStore store,
    IngressSandbox sandbox,
    HttpEntryOptions options,
    HttpEntryMetrics metrics,
    ILoggerFactory loggers,
    ILogger<HttpEntry> logger,
    HealthChecks.TaskHealthMonitor? health = null) : BackgroundService
{
    private static readonly TimeSpan Retry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan WatchTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The body of a 404 for a host or path no route has.</summary>
    public const string NotFoundBody = "no route for this host and path\n";

    private volatile WebApplication? _running;

    /// <summary>
    /// The entry's web application while it serves (null before it starts, between retries, after it stops): its
    /// endpoints and YARP state are what <c>mesh trace</c> asks which route and cluster a request gets.
    /// </summary>
    public IEndpointRouteBuilder? Running => _running;

    /// <summary>The port the entry listens on (0: off).</summary>
    public int Port => options.Port;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Port == 0 && options.ActiveHttpsPort == 0)
        {
            return;
        }

        // The certificates outlive a restart of the web host (a port taken): loaded and watched once.
        using var certificates = options.CertsDirectory is { } directory ? new CertificateStore(directory, loggers.CreateLogger<CertificateStore>()) : null;
        certificates?.Start();
        while (!stoppingToken.IsCancellationRequested)
        {
            WebApplication? app = null;
            try
            {
                app = Build(certificates);
                await app.StartAsync(stoppingToken).ConfigureAwait(false);
                LogListening(options.Port, options.ActiveHttpsPort, sandbox.Netns.ToString());
                _running = app;
                await FollowStoreAsync(app.Services.GetRequiredService<InMemoryConfigProvider>(), stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogEntryFailed(e, options.Port, Retry.TotalSeconds);
                await Task.Delay(Retry, stoppingToken).ConfigureAwait(false);
            }
            finally
            {
                _running = null;
                if (app is not null)
                {
                    using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await app.StopAsync(stop.Token).ConfigureAwait(false);
                    await app.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private WebApplication Build(CertificateStore? certificates)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<ILoggerFactory>(new WithoutRequestLogging(loggers)); // the daemon's log, not a console of its own
        builder.WebHost.ConfigureKestrel(k => Listen(k, options, certificates));
        var forwarded = new ForwardedHeaders(options);
        builder.Services.AddReverseProxy()
            .LoadFromMemory([], [])
            .AddTransforms(context =>
            {
                context.UseDefaultForwarders = false; // ForwardedHeaders decides what of the client's headers survives
                context.AddRequestTransform(forwarded.ApplyAsync);
            });
        builder.Services.AddSingleton<Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy, MaglevLoadBalancingPolicy>(); // --lb maglev, --affinity source-ip
        builder.Services.AddSingleton<IForwarderHttpClientFactory>(new SandboxHttpClientFactory(new SandboxConnector(sandbox.Netns.Path!)));

        var app = builder.Build();
        app.MapReverseProxy(proxy =>
        {
            proxy.Use(MeasureAsync);
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
        app.MapFallback("{**path}", NotFoundAsync);
        return app;
    }

    /// <summary>
    /// The entry's listeners: cleartext HTTP/1.1 and h2c on <c>--http-port</c>, TLS with HTTP/1.1 and HTTP/2 (ALPN)
    /// on <c>--https-port</c> when there is a certificates directory.
    /// </summary>
    internal static void Listen(KestrelServerOptions k, HttpEntryOptions options, CertificateStore? certificates)
    {
        if (options.Port != 0)
        {
            // Cleartext HTTP/1.1 and HTTP/2 with prior knowledge (h2c, as gRPC clients speak it), told apart by
            // the HTTP/2 connection preface (H2cPriorKnowledge). The Upgrade: h2c dance is not offered (Kestrel has none).
            // The Http2-only endpoint binds first, so its pipeline exists before the port takes a connection.
            var h2c = new H2cPriorKnowledge();
            k.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.Use(h2c.Capture);
            });
            k.Listen(IPAddress.Any, options.Port, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                listen.Use(next => connection => h2c.SniffAsync(connection, next));
            });
        }

        if (certificates is not null)
        {
            k.Listen(IPAddress.Any, options.HttpsPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.UseHttps(new TlsHandshakeCallbackOptions
                {
                    OnConnection = context => ValueTask.FromResult(certificates.OptionsFor(context.ClientHelloInfo.ServerName)),
                });
            });
        }
    }

    /// <summary>Applies every new revision of the state until stopped.</summary>
    private async Task FollowStoreAsync(InMemoryConfigProvider provider, CancellationToken ct)
    {
        long applied = -1;
        long healthApplied = -1;
        Discovery.Model.ClusterState? state = null;
        var healthOnly = false;
        IReadOnlyList<RouteConfig>? lastRoutes = null;
        IReadOnlyList<ClusterConfig>? lastClusters = null;
        while (!ct.IsCancellationRequested)
        {
            long revision;
            var healthVersion = health?.Version ?? 0;
            try
            {
                // A health change alone re-plans from the state already read (see NodeReconciler).
                state = healthOnly && state is not null ? state : await store.GetStateAsync((state?.Revision ?? -1) + 1, ct).ConfigureAwait(false);
                revision = state.Revision;
                if (revision != applied || healthVersion != healthApplied)
                {
                    var (routes, clusters) = HttpRouteTable.Build(state, health?.Snapshot);
                    // An unrelated change (a DNS alias, another node) keeps YARP's state as it is.
                    if (lastRoutes is null || !routes.SequenceEqual(lastRoutes) || !clusters.SequenceEqual(lastClusters!))
                    {
                        provider.Update(routes, clusters);
                        LogApplied(revision, routes.Count, clusters.Sum(c => c.Destinations?.Count ?? 0));
                        (lastRoutes, lastClusters) = (routes, clusters);
                    }

                    applied = revision;
                    healthApplied = healthVersion;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                LogStateFailed(e, Retry.TotalSeconds);
                healthOnly = false;
                await Task.Delay(Retry, ct).ConfigureAwait(false);
                continue;
            }

            try
            {
                healthOnly = await HealthChecks.StoreOrHealthChange.WaitAsync(store, revision, WatchTimeout, health, healthApplied, ct).ConfigureAwait(false);
            }
            catch (StoreUnavailableException e)
            {
                healthOnly = false;
                LogStoreUnavailable(e.Message);
                await Task.Delay(Retry, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task MeasureAsync(HttpContext context, Func<Task> next)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next().ConfigureAwait(false);
        }
        finally
        {
            var feature = context.GetReverseProxyFeature();
            var route = feature.Route.Config;
            metrics.Record(
                route.RouteId,
                route.Metadata?.GetValueOrDefault(HttpRouteTable.ServiceKey) ?? "",
                feature.ProxiedDestination?.DestinationId ?? "none",
                context.Response.StatusCode,
                Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    private static Task NotFoundAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(NotFoundBody, context.RequestAborted);
    }
}
