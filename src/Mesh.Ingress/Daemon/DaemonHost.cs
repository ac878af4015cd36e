using System.Net;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Ingress.Api;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Telemetry;
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
        var flavour = await IptablesFlavour.DetectAsync(runner, cancellationToken).ConfigureAwait(false);
        var (choice, reason) = DataplaneSelector.Resolve(options.Dataplane, KernelFeatures.HasIpvs());
        var dataplaneName = choice == DataplaneChoice.Ipvs ? "ipvs" : "nftables";

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (options.LogFile is not null)
        {
            builder.Logging.AddProvider(new FileLoggerProvider(options.LogFile));
        }
        else
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        }

        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var endpoint in options.ApiEndpoints)
            {
                if (endpoint.Scheme == "unix")
                {
                    PrepareSocketPath(endpoint.AbsolutePath);
                    kestrel.ListenUnixSocket(endpoint.AbsolutePath);
                }
                else
                {
                    kestrel.Listen(IPAddress.Parse(endpoint.Host), endpoint.Port);
                }
            }
        });

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(options.Network);
        services.AddSingleton<ICommandRunner>(runner);
        var generation = new NetlinkNftGeneration();
        services.AddSingleton(new IptablesExecutor(runner, flavour, options.ResyncInterval, generation));
        services.AddSingleton(new NftExecutor(runner, options.ResyncInterval, generation));
        services.AddSingleton<LinkTool>();
        services.AddSingleton<IngressSandbox>();
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

        services.AddSingleton<MeshTelemetry>();
        services.AddSingleton<PrometheusMetrics>();
        services.AddSingleton(new NodeStatus
        {
            Node = options.Node,
            Store = options.Etcd ?? (options.Join is null ? "embedded" : $"joined {options.Join}"),
            Dataplane = dataplaneName,
            DataplaneReason = reason,
        });
        if (options.Etcd is not null)
        {
            services.AddSingleton<IClusterStore>(sp => new EtcdStore(
                EtcdStoreOptions.Parse(options.Etcd) with { LeaseTtl = options.LeaseTtl },
                sp.GetRequiredService<ILogger<EtcdStore>>()));
        }
        else if (options.Join is null)
        {
            services.AddSingleton<IClusterStore>(sp => new EmbeddedStore(options.StateDirectory, sp.GetRequiredService<ILogger<EmbeddedStore>>()));
        }
        else
        {
            services.AddSingleton<IClusterStore>(_ => new RemoteStore(new HttpClient
            {
                BaseAddress = options.Join,
                Timeout = TimeSpan.FromSeconds(90), // longer than the longest watch
            }));
        }

        services.AddSingleton<ClusterDnsAuthority>();
        services.AddSingleton(sp => new TaskResolvers(
            sp.GetRequiredService<ClusterDnsAuthority>(),
            options.DnsUpstreams.Count > 0 ? options.DnsUpstreams : ResolvConf.ReadUpstreams(options.NodeResolvConf),
            sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton(new TaskNamespaceGuard(options.Network));
        services.AddSingleton(new TaskResolvConfWriter(options.ResolvConfRoots, options.NodeResolvConf));
        services.AddSingleton<TaskNamespaceSync>();
        services.AddHostedService<NodeReconciler>();

        await using var app = builder.Build();
        app.MapMeshApi();
        var metrics = app.Services.GetRequiredService<PrometheusMetrics>(); // listening from the start
        app.MapGet("/metrics", () => Results.Text(metrics.Render(), "text/plain; version=0.0.4"));
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Mesh.Daemon");
        log.LogInformation("Starting node {Node}: dataplane {Dataplane} ({Reason}), iptables {Flavour}, store {Store}",
            options.Node, dataplaneName, reason, flavour.Name, options.Etcd ?? options.Join?.ToString() ?? "embedded in " + options.StateDirectory);

        using var otlp = options.OtlpEndpoint is null ? null : new OtlpExport(options.OtlpEndpoint, TimeSpan.FromSeconds(15));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        foreach (var endpoint in options.ApiEndpoints.Where(e => e.Scheme == "unix"))
        {
            File.SetUnixFileMode(endpoint.AbsolutePath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        }

        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        return 0;
    }

    private static void PrepareSocketPath(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path))
        {
            File.Delete(path); // a socket file left by a killed daemon
        }
    }
}
