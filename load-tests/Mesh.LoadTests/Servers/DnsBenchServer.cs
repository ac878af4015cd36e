using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;
using Mesh.Ingress.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Mesh.LoadTests.Servers;

/// <summary>
/// The embedded resolver hosted as the daemon hosts it (<see cref="EmbeddedDnsServer"/> over
/// <see cref="ClusterDnsAuthority"/>, the "Mesh" meter exported at <c>/metrics</c> on a loopback Kestrel listener),
/// on plain loopback sockets, answering for task <see cref="Querier"/> of a lab-like state. Run as a child process
/// by <c>dns-bench</c> (<c>dns-serve</c>): "ready URL" on stdout once bound (the metrics URL, "-" without one); each "stats" line on stdin is answered with one
/// <see cref="DnsServerStats"/> line; EOF on stdin stops it. A child process, so that the benchmark's own work
/// (dnsperf's output parsed at 10k lines/s) never shares a GC heap or a thread pool with the server it measures.
/// </summary>
public static class DnsBenchServer
{
    public const string Querier = "web.1";
    public const string Service = "web";
    public const string Network = "appnet";

    /// <summary>The lab's shape: appnet 10.0.1.0/24, <c>web</c> (VIP, port 8080, alias frontend) with 3 tasks, plus an unrelated service.</summary>
    public static ClusterState State()
    {
        var s = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        s = StateTransitions.CreateNetwork(s, new NetworkSpec { Name = Network, Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = Service, Ports = [new PublishedPort(8080, 80)], Networks = [Network], Aliases = ["frontend"] }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "api", Mode = ServiceMode.Dnsrr, Networks = [Network] }).State;
        foreach (var service in new[] { Service, Service, Service, "api", "api" })
        {
            s = StateTransitions.AddTask(s, new TaskSpec { Service = service, Node = "n1" }).State;
        }

        return s;
    }

    /// <summary>dnsmasq's addn-hosts file with the answers the embedded resolver gives <see cref="Querier"/> for <c>web</c> and <c>tasks.web</c>.</summary>
    public static string HostsFile(ClusterState state)
    {
        var web = state.Services.Single(x => x.Name == Service);
        var ips = state.Tasks.Where(t => t.Service == Service).Select(t => t.Addresses[Network]).Order(StringComparer.Ordinal);
        return $"{web.Vips[Network]} {Service}\n" + string.Concat(ips.Select(ip => $"{ip} tasks.{Service}\n"));
    }

    /// <summary>How the "Mesh" meter is exported at <c>/metrics</c>: OpenTelemetry's Prometheus exporter as the daemon configures it,
    /// or nothing listening at all. (The hand-written exporter it was measured against is gone: BENCHMARKS.md.)</summary>
    public static readonly string[] Exporters = ["otel", "none"];

    public static async Task<int> RunAsync(IPEndPoint at, string exporter, CancellationToken ct)
    {
        if (!Exporters.Contains(exporter)) throw new ArgumentException($"--metrics must be one of {string.Join(", ", Exporters)}, not '{exporter}'");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        if (exporter == "otel")
        {
            builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(MeshTelemetry.Name).AddPrometheusExporter(TelemetryRegistration.ConfigurePrometheus));
        }

        await using var web = builder.Build();
        if (exporter == "otel") web.MapMeshMetrics();
        await web.StartAsync(ct).ConfigureAwait(false);
        var metricsUrl = exporter == "none" ? "-" : web.Urls.First() + TelemetryRegistration.MetricsPath;

        var state = State();
        var authority = new ClusterDnsAuthority();
        authority.Update(state);
        var task = state.Tasks.Single(t => t.Name == Querier);
        var udp = new Socket(at.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        var tcp = new Socket(at.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        udp.Bind(at);
        tcp.Bind(at);
        await using var server = new EmbeddedDnsServer(new EmbeddedDnsServerOptions { TaskId = task.Name, State = task, UdpSocket = udp, TcpListener = tcp }, authority);
        server.Start();
        await Console.Out.WriteLineAsync($"ready {metricsUrl}").ConfigureAwait(false);
        await Console.Out.FlushAsync(ct).ConfigureAwait(false);
        try
        {
            while (await Console.In.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                if (line.Trim() == "stats")
                {
                    await Console.Out.WriteLineAsync(DnsServerStats.Capture().Format()).ConfigureAwait(false);
                    await Console.Out.FlushAsync(ct).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        await web.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return 0;
    }
}

/// <summary>Cumulative runtime counters of the server process; differences over a run say what the run cost.</summary>
public readonly record struct DnsServerStats(long Gen0, long Gen1, long Gen2, double PauseMs, long AllocatedBytes, double CpuMs, long WorkItems, long Contentions, int Threads)
{
    public static DnsServerStats Capture()
    {
        using var self = Process.GetCurrentProcess();
        return new(GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration().TotalMilliseconds,
            GC.GetTotalAllocatedBytes(precise: false), self.TotalProcessorTime.TotalMilliseconds, ThreadPool.CompletedWorkItemCount,
            Monitor.LockContentionCount, self.Threads.Count);
    }

    public string Format() => string.Join(' ', new object[] { Gen0, Gen1, Gen2, PauseMs, AllocatedBytes, CpuMs, WorkItems, Contentions, Threads }
        .Select(x => Convert.ToString(x, CultureInfo.InvariantCulture)));

    public static DnsServerStats Parse(string line)
    {
        var f = line.Split(' ');
        long L(int i) => long.Parse(f[i], CultureInfo.InvariantCulture);
        double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
        return new(L(0), L(1), L(2), D(3), L(4), D(5), L(6), L(7), (int)L(8));
    }

    public static DnsServerStats operator -(DnsServerStats a, DnsServerStats b) =>
        new(a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.PauseMs - b.PauseMs, a.AllocatedBytes - b.AllocatedBytes, a.CpuMs - b.CpuMs,
            a.WorkItems - b.WorkItems, a.Contentions - b.Contentions, a.Threads);
}
