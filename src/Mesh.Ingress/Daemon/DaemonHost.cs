using System.Diagnostics.Metrics;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon.Systemd;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Health;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Security;
using Mesh.Ingress.Telemetry;
using Mesh.Ingress.Trace;
using Mesh.Ingress.Ui;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>Composes the daemon: store (embedded or joined), dataplane, reconciler and API. DI lives here only.</summary>
public static class DaemonHost
{
    public static async Task<int> RunAsync(DaemonOptions options, CancellationToken cancellationToken)
    {
        var runner = new ProcessCommandRunner(options.CommandTimeout);
        var (choice, reason) = DataplaneSelector.Resolve(options.Dataplane, KernelFeatures.HasIpvs());
        // The nftables dataplane runs no iptables tool unless old rules or a dropping FORWARD call for one: no probe by process.
        var flavour = choice == DataplaneChoice.Ipvs
            ? await IptablesFlavour.DetectAsync(runner, cancellationToken).ConfigureAwait(false)
            : IptablesPresence.Read(null).Flavour;
        var dataplaneName = choice == DataplaneChoice.Ipvs ? "ipvs" : "nftables";

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (options.LogFile is not null)
        {
            builder.Logging.AddProvider(new FileLoggerProvider(options.LogFile, options.LogMaxSize));
        }
        else
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        }

        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // YARP logs two Information lines per proxied request ("Proxying to ...", "Received HTTP/1.1 response 200"):
        // through the L7 entry that was megabytes of log a minute and ~10% of its CPU per request (BENCHMARKS.md, l7).
        builder.Logging.AddFilter("Yarp", LogLevel.Warning);
        builder.UseMeshSystemd(); // after the console logger: under systemd its journal format wins
        ApiListeners.Configure(builder.WebHost, options.ApiEndpoints, options.Security);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(options.Network);
        services.AddSingleton<ICommandRunner>(runner);
        var generation = new NetlinkNftGeneration();
        services.AddSingleton(new IptablesExecutor(runner, flavour, options.ResyncInterval, generation));
        services.AddSingleton(new NfTablesExecutor(options.ResyncInterval));
        services.AddSingleton(sp => new HostRulesWriter(sp.GetRequiredService<IptablesExecutor>(), sp.GetRequiredService<NfTablesExecutor>(),
            choice == DataplaneChoice.Nftables, runner, sp.GetRequiredService<ILogger<HostRulesWriter>>()));
        services.AddSingleton(sp => new TaskRulesWriter(sp.GetRequiredService<IptablesExecutor>(), sp.GetRequiredService<NfTablesExecutor>(),
            choice == DataplaneChoice.Nftables, runner, sp.GetRequiredService<ILogger<TaskRulesWriter>>()));
        services.AddSingleton<INetworkLinks, NetlinkLinks>();
        services.AddSingleton<IngressSandbox>();
        services.AddSingleton<Overlay.IOverlayKernel, Overlay.OverlayKernel>();
        services.AddSingleton<Overlay.OverlayNetworks>();
        services.AddSingleton<Overlay.TaskLegs>();
        services.AddSingleton<Egress.TaskEgress>();
        services.AddSingleton(options.Ipvs);
        services.AddSingleton<IpvsDataplane>();
        services.AddSingleton<NftablesDataplane>();
        if (choice == DataplaneChoice.Ipvs)
        {
            services.AddSingleton<IDataplane>(sp => sp.GetRequiredService<IpvsDataplane>());
            services.AddSingleton(sp => new DataplaneSwitchCleanup(sp.GetRequiredService<NftablesDataplane>(), sp.GetRequiredService<ILogger<DataplaneSwitchCleanup>>()));
        }
        else
        {
            services.AddSingleton<IDataplane>(sp => sp.GetRequiredService<NftablesDataplane>());
            services.AddSingleton(sp => new DataplaneSwitchCleanup(
                KernelFeatures.HasIpvs() ? sp.GetRequiredService<IpvsDataplane>() : null, sp.GetRequiredService<ILogger<DataplaneSwitchCleanup>>()));
        }

        services.AddMeshTelemetry(new TelemetryOptions(options.Node, options.OtlpEndpoint, TimeSpan.FromSeconds(15), options.L4MetricsBackends));
        services.AddSingleton(sp => new Telemetry.L4.L4BackendMetrics(
            choice == DataplaneChoice.Ipvs
                ? new Telemetry.L4.IpvsBackendSource(sp.GetRequiredService<IngressSandbox>().Netns.Path!)
                : new Telemetry.L4.ConntrackBackendSource(sp.GetRequiredService<IngressSandbox>().Netns.Path!, Telemetry.L4.L4BackendMetrics.DefaultConntrackLimit),
            sp.GetRequiredService<IMeterFactory>(),
            sp.GetRequiredService<ILogger<Telemetry.L4.L4BackendMetrics>>(),
            maxBackends: options.L4MetricsBackends));
        services.AddSingleton(new NodeStatus
        {
            Node = options.Node,
            Store = options.Etcd ?? (options.Join is null ? "embedded" : $"joined {options.Join}"),
            Dataplane = dataplaneName,
            DataplaneReason = reason,
        });
        // Publishing a port this daemon's own API listens on would redirect the API away on every node.
        var reserved = ReservedPorts.Default.With(options.ApiEndpoints.Where(e => e.Scheme != "unix").Select(e => (e.Port, TransportProtocol.Tcp, "this daemon's API")))
            .With(options.Http.Port == 0 ? [] : [(options.Http.Port, TransportProtocol.Tcp, "the L7 entry (--http-port)")])
            .With(options.Http.ActiveHttpsPort == 0 ? [] : [(options.Http.ActiveHttpsPort, TransportProtocol.Tcp, "the HTTPS entry (--https-port)")])
            .With(options.HealthPort == 0 ? [] : [(options.HealthPort, TransportProtocol.Tcp, "the daemon's health port")]);
        services.AddSingleton(sp => new StoreMetrics(sp.GetRequiredService<IMeterFactory>()));
        if (options.Etcd is not null)
        {
            var etcdOptions = EtcdStoreOptions.Parse(options.Etcd) with { LeaseTtl = options.LeaseTtl };
            services.AddSingleton<IClusterStore>(sp => new EtcdStore(
                (options.EtcdTls is { } etcdTls ? etcdOptions.WithTls(etcdTls) : etcdOptions) with { Node = options.Node, ReservedPorts = reserved },
                sp.GetRequiredService<ILogger<EtcdStore>>(),
                sp.GetRequiredService<StoreMetrics>()));
        }
        else if (options.Join is null)
        {
            services.AddSingleton<IClusterStore>(sp => new EmbeddedStore(
                options.StateDirectory, sp.GetRequiredService<ILogger<EmbeddedStore>>(), reserved, sp.GetRequiredService<StoreMetrics>()));
        }
        else
        {
            services.AddSingleton<IClusterStore>(sp => new RemoteStore(
                ApiClientFactory.CreateTcp(
                    options.Join,
                    new ApiClientCredentials(options.Security.JoinTls, options.Security.Token),
                    TimeSpan.FromSeconds(90)), // longer than the longest watch
                sp.GetRequiredService<ILogger<RemoteStore>>(),
                sp.GetRequiredService<StoreMetrics>(),
                reserved));
        }

        services.AddSingleton<ClusterDnsAuthority>();
        services.AddSingleton(sp => new TaskResolvers(
            sp.GetRequiredService<ClusterDnsAuthority>(),
            options.DnsUpstreams.Count > 0 ? options.DnsUpstreams : ResolvConf.ReadUpstreams(options.NodeResolvConf, sp.GetRequiredService<ILoggerFactory>().CreateLogger<TaskResolvers>()),
            sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton(new TaskNamespaceGuard(options.Network));
        services.AddSingleton(new TaskResolvConfWriter(options.ResolvConfRoots, options.NodeResolvConf));
        services.AddSingleton<ClientReplyRoutes>();
        services.AddSingleton<LocalTaskCounts>();
        if (options.HealthPort != 0)
        {
            services.AddHostedService<HealthPortServer>();
        }

        services.AddSingleton(sp => new HealthChecks.TaskHealthMonitor(options.Node, sp.GetRequiredService<IMeterFactory>(), sp.GetRequiredService<ILogger<HealthChecks.TaskHealthMonitor>>()));
        services.AddHostedService<HealthChecks.HealthProber>();
        services.AddSingleton(new Readiness.TaskReadinessOptions());
        services.AddHostedService<Readiness.TaskReadinessProber>();
        services.AddSingleton(new Planning.NodePlanner(choice == DataplaneChoice.Nftables, options.Network, options.Ipvs));
        services.AddSingleton<SandboxExecutor>();
        services.AddSingleton<TaskNamespaceExecutor>();
        services.AddSingleton<TaskNamespaceSync>();
        services.AddHostedService<NodeReconciler>();
        services.AddHostedService<DnsStateFollower>();
        services.AddSingleton<NodeTracer>();
        services.AddSingleton(options.Http);
        services.AddSingleton<Http.HttpEntryMetrics>();
        services.AddSingleton<Http.HttpEntry>(); // also read by mesh trace (its live routes)
        services.AddHostedService(sp => sp.GetRequiredService<Http.HttpEntry>());
        services.AddSingleton<Proxy.ProxyRelayMetrics>();
        services.AddHostedService<Proxy.ProxyRelay>();

        await using var app = builder.Build();
        app.UseApiAuthentication(options.Security, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Mesh.Api.Security"));
        app.MapMeshApi();
        app.MapMeshUi(); // GET /ui, /ui/events: the status page, behind the same authentication
        app.MapMeshMetrics();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Mesh.Daemon");
        log.LogInformation("Starting node {Node}: dataplane {Dataplane} ({Reason}), iptables {Flavour}, store {Store}",
            options.Node, dataplaneName, reason, flavour.Name, options.Etcd ?? options.Join?.ToString() ?? "embedded in " + options.StateDirectory);

        await app.StartAsync(cancellationToken).ConfigureAwait(false); // the unix sockets are 0660 from their first moment (UnixApiSocket)

        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        return 0;
    }
}
