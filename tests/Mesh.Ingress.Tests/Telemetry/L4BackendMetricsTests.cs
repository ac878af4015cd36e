using System.Diagnostics;
using System.Globalization;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Telemetry.L4;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink.Conntrack;
using Mesh.Ingress.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Metrics;
using ClusterState = Mesh.Discovery.Model.ClusterState;

namespace Mesh.Ingress.Tests.Telemetry;

/// <summary>
/// The per-backend L4 metrics: which kernel objects count for which known service, port and task (and that nothing
/// else is labelled), the one-read-per-interval cache, and, against this machine's kernel, the conntrack source in a
/// throw-away namespace where nft DNATs real connections to a task's ingress address as the sandbox does.
/// </summary>
public sealed class L4BackendMetricsTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly List<IDisposable> _owned = [];
    private string? _netns;

    /// <summary>web: two cluster ports, a udp one, a local one, a host-mode and a proxy one (both not the sandbox's); two tasks.</summary>
    private static ClusterState State()
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec
        {
            Name = "web",
            Ports =
            [
                PublishedPort.Parse("8080:80"), PublishedPort.Parse("8443:443"), PublishedPort.Parse("5353:53/udp"),
                PublishedPort.Parse("8090:80,traffic=local"), PublishedPort.Parse("8091:80,mode=host"), PublishedPort.Parse("8092:80,proxy=v2"),
            ],
        }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Routes = [ServiceRoute.Parse("api.test/=80")] }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "api", Node = "n1" }).State;
        return state;
    }

    private static IPAddress Address(ClusterState state, string task) => IPAddress.Parse(state.Tasks.Single(t => t.Name == task).Addresses[OverlayNetwork.IngressName]);

    [Fact]
    public void Only_known_backends_of_the_sandboxs_ports_are_labelled_and_counted()
    {
        var state = State();
        var directory = L4BackendDirectory.From(state);
        var web1 = Address(state, "web.1");
        var web = state.Services.Single(s => s.Name == "web");

        Assert.Equal(
            ["web/5353/udp/web.1", "web/5353/udp/web.2", "web/8080/tcp/web.1", "web/8080/tcp/web.2", "web/8090/tcp/web.1", "web/8090/tcp/web.2", "web/8443/tcp/web.1", "web/8443/tcp/web.2"],
            directory.ByDnat.Values.Select(k => $"{k.Service}/{k.Port}/{k.Task}").Order(StringComparer.Ordinal));
        Assert.Equal(new L4BackendKey("web", "8080/tcp,8443/tcp,5353/udp", "web.1"), directory.ByIpvs[((uint)web.FirewallMark, web1)]);
        Assert.Equal(new L4BackendKey("web", "8090/tcp", "web.1"), directory.ByIpvs[((uint)web.FirewallMark | Mesh.Ingress.Dataplane.IpvsSandboxRules.LocalTrafficMark, web1)]);

        var counts = new Dictionary<L4BackendKey, (long Active, long Inactive)>();
        ConntrackBackendSource.Count(directory, Entry(8080, web1, 80) with { TcpState = TcpConntrackState.Established }, counts);
        ConntrackBackendSource.Count(directory, Entry(8080, web1, 80) with { TcpState = TcpConntrackState.TimeWait }, counts);
        ConntrackBackendSource.Count(directory, Entry(8080, web1, 80, ConntrackStatus.Confirmed), counts); // not DNATed
        ConntrackBackendSource.Count(directory, Entry(8080, IPAddress.Parse("10.255.9.9"), 80), counts); // no such task
        ConntrackBackendSource.Count(directory, Entry(8091, web1, 80), counts); // host mode: not the sandbox's
        ConntrackBackendSource.Count(directory, Entry(8080, web1, 81), counts); // not the target port
        ConntrackBackendSource.Count(directory, Entry(5353, web1, 53, protocol: 17), counts);
        Assert.Equal((1, 1), counts[new L4BackendKey("web", "8080/tcp", "web.1")]);
        Assert.Equal((0, 1), counts[new L4BackendKey("web", "5353/udp", "web.1")]); // UDP: inactive, as IPVS counts it
        Assert.Equal(2, counts.Count);

        var sample = IpvsBackendSource.Sample(new L4BackendKey("web", "8080/tcp", "web.1"), new IpvsDestination(web1, 0)
        {
            ActiveConnections = 2,
            InactiveConnections = 3,
            Stats = new IpvsStats(7, 70, 60, 7000, 6000, 0, 0, 0, 0, 0),
        });
        Assert.Equal((2, 3), (sample.Active, sample.Inactive));
        Assert.Equal(new L4BackendCounters(7, 70, 60, 7000, 6000), sample.Counters);
    }

    [Fact]
    public void Every_task_of_a_port_shares_one_label_string()
    {
        // At 10,000 services × 5 tasks a label string per key was 50,000 strings per map (issue 12, daemon RSS).
        var state = State();
        var web = state.Services.Single(s => s.Name == "web");
        var (web1, web2) = (Address(state, "web.1"), Address(state, "web.2"));
        var directory = L4BackendDirectory.From(state);

        var dnat1 = directory.ByDnat[(6, 8080, web1, 80)];
        var dnat2 = directory.ByDnat[(6, 8080, web2, 80)];
        Assert.Equal(new L4BackendKey("web", "8080/tcp", "web.1"), dnat1);
        Assert.Equal(new L4BackendKey("web", "8080/tcp", "web.2"), dnat2);
        Assert.Same(dnat1.Port, dnat2.Port);
        Assert.Same(web.Name, dnat1.Service);

        var ipvs1 = directory.ByIpvs[((uint)web.FirewallMark, web1)];
        var ipvs2 = directory.ByIpvs[((uint)web.FirewallMark, web2)];
        Assert.Equal(new L4BackendKey("web", "8080/tcp,8443/tcp,5353/udp", "web.2"), ipvs2);
        Assert.Same(ipvs1.Port, ipvs2.Port);
    }

    [Fact]
    public void One_kernel_read_serves_every_instrument_within_the_interval_and_unknown_backends_report_zero()
    {
        var state = State();
        var time = new ManualTime();
        var source = new CountingSource(d => [new L4BackendSample(d.ByIpvs.Values.First(k => k.Task == "web.1" && k.Port.StartsWith("8080", StringComparison.Ordinal)), 4, 1) { Counters = new L4BackendCounters(9, 1, 2, 3, 4) }]);
        var metrics = new L4BackendMetrics(source, _services.GetRequiredService<IMeterFactory>(), NullLogger<L4BackendMetrics>.Instance, TimeSpan.FromSeconds(5), time);

        Assert.Empty(Observe()); // no state applied yet: no series, no read
        Assert.Equal(0, source.Reads);
        metrics.Update(state);
        var first = Observe();
        Assert.Equal(1, source.Reads); // four instruments, one read
        Assert.Equal(4, first[("mesh.l4.backend.connections", "web", "8080/tcp,8443/tcp,5353/udp", "web.1", "active")]);
        Assert.Equal(1, first[("mesh.l4.backend.connections", "web", "8080/tcp,8443/tcp,5353/udp", "web.1", "inactive")]);
        Assert.Equal(0, first[("mesh.l4.backend.connections", "web", "8080/tcp,8443/tcp,5353/udp", "web.2", "active")]);
        Assert.Equal(9, first[("mesh.l4.backend.connections.opened", "web", "8080/tcp,8443/tcp,5353/udp", "web.1", "")]);
        Assert.Equal(3, first[("mesh.l4.backend.bytes", "web", "8080/tcp,8443/tcp,5353/udp", "web.1", "in")]);
        Assert.Equal(4, first[("mesh.l4.backend.bytes", "web", "8080/tcp,8443/tcp,5353/udp", "web.1", "out")]);
        Assert.DoesNotContain(first.Keys, k => k.Service == "api");

        time.Advance(TimeSpan.FromSeconds(4));
        Observe();
        Assert.Equal(1, source.Reads);
        time.Advance(TimeSpan.FromSeconds(2));
        Observe();
        Assert.Equal(2, source.Reads);
    }

    [Fact]
    public async Task The_Prometheus_exporter_names_the_families_as_the_README_does()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTestServer();
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(MeshTelemetry.Name).AddPrometheusExporter(TelemetryRegistration.ConfigurePrometheus));
        var source = new CountingSource(d => [new L4BackendSample(d.ByIpvs.Values.First(k => k.Task == "web.1"), 2, 1) { Counters = new L4BackendCounters(9, 10, 11, 12, 13) }]);
        builder.Services.AddSingleton(sp => new L4BackendMetrics(source, sp.GetRequiredService<IMeterFactory>(), NullLogger<L4BackendMetrics>.Instance));
        await using var app = builder.Build();
        app.MapMeshMetrics();
        app.Services.GetRequiredService<L4BackendMetrics>().Update(State());
        await app.StartAsync();

        var text = await app.GetTestClient().GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var samples = PrometheusText.Parse(text).Samples
            .Where(s => s.Labels.GetValueOrDefault("task") == "web.1" && s.Labels.GetValueOrDefault("port") == "8080/tcp,8443/tcp,5353/udp")
            .ToList();

        string[] expected =
        [
            "mesh_l4_backend_bytes_total direction=in 12", "mesh_l4_backend_bytes_total direction=out 13",
            "mesh_l4_backend_connections state=active 2", "mesh_l4_backend_connections state=inactive 1",
            "mesh_l4_backend_connections_opened_total  9",
            "mesh_l4_backend_packets_total direction=in 10", "mesh_l4_backend_packets_total direction=out 11",
        ];
        Assert.Equal(expected, samples
            .Select(s => $"{s.Name} {string.Join(',', s.Labels.Where(l => l.Key is "direction" or "state").Select(l => $"{l.Key}={l.Value}"))} {s.Value}")
            .Order(StringComparer.Ordinal));
        Assert.All(samples, s => Assert.Equal("web", s.Labels["service"]));
    }

    /// <summary>
    /// Per-backend series scale with the cluster, past the SDK's default of 2,000 points per instrument: through the
    /// daemon's own telemetry registration, 1,500 backends are 3,000 connection points and 3,000 packet points, each
    /// exported under its own labels (none folded into an overflow series) with the value the kernel gave.
    /// </summary>
    [Fact]
    public async Task Every_backend_of_a_large_node_is_exported_under_its_own_labels()
    {
        const int tasks = 1_500;
        var log = new WarningLog();
        var samples = await ScrapeBackendsAsync(tasks, new TelemetryOptions("n1", null, TimeSpan.FromSeconds(15)), log);
        Assert.Empty(log.Messages);
        var active = samples.Where(s => s.Name == "mesh_l4_backend_connections" && s.Labels.GetValueOrDefault("state") == "active").ToList();
        Assert.DoesNotContain(samples, s => s.Labels.ContainsKey("otel_metric_overflow"));
        Assert.Equal(tasks, active.Select(s => s.Labels["task"]).Distinct().Count());
        Assert.Equal(2 * tasks, samples.Count(s => s.Name == "mesh_l4_backend_connections"));
        Assert.Equal(2 * tasks, samples.Count(s => s.Name == "mesh_l4_backend_packets_total"));
        Assert.Equal((long)tasks * (tasks + 1) / 2, (long)active.Sum(s => s.Value));
    }

    /// <summary>
    /// More backends than <c>--l4-metrics-backends</c>: the series cover exactly that many, the first by name, each
    /// with its own value, and nothing is summed into an overflow series that names no backend.
    /// </summary>
    [Fact]
    public async Task Beyond_the_limit_the_first_backends_by_name_are_exported_and_nothing_is_folded()
    {
        var log = new WarningLog();
        var samples = await ScrapeBackendsAsync(30, new TelemetryOptions("n1", null, TimeSpan.FromSeconds(15), L4MaxBackends: 12), log, scrapes: 2);
        Assert.Equal(["L4 backend metrics: this node has 30 backends, series cover the first 12 by service, port and task (up to service big); raise --l4-metrics-backends for the rest"], log.Messages);
        var active = samples.Where(s => s.Name == "mesh_l4_backend_connections" && s.Labels.GetValueOrDefault("state") == "active").ToList();
        Assert.DoesNotContain(samples, s => s.Labels.ContainsKey("otel_metric_overflow"));
        var firstByName = Enumerable.Range(1, 30).Select(i => $"big.{i}").Order(StringComparer.Ordinal).Take(12);
        Assert.Equal(firstByName, active.Select(s => s.Labels["task"]).Order(StringComparer.Ordinal));
        Assert.All(active, s => Assert.Equal(int.Parse(s.Labels["task"]["big.".Length..], CultureInfo.InvariantCulture), s.Value));
        Assert.Equal(24, samples.Count(s => s.Name == "mesh_l4_backend_packets_total"));
    }

    /// <summary>One service "big" on :8080 with <paramref name="tasks"/> tasks (big.N has N active connections), the last of <paramref name="scrapes"/> scrapes.</summary>
    private static async Task<IReadOnlyList<PrometheusText.Sample>> ScrapeBackendsAsync(int tasks, TelemetryOptions options, WarningLog log, int scrapes = 1)
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "big", Ports = [PublishedPort.Parse("8080:80")] }).State;
        for (var i = 0; i < tasks; i++)
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Service = "big", Node = "n1" }).State;
        }

        var source = new CountingSource(d => [.. d.ByIpvs.Values.Select(k =>
        {
            var n = int.Parse(k.Task["big.".Length..], CultureInfo.InvariantCulture);
            return new L4BackendSample(k, n, 0) { Counters = new L4BackendCounters(1, n, 1, 1, 1) };
        })]);
        await using var app = await StartDaemonMetricsAsync(source, options, log, state);
        var text = "";
        for (var i = 0; i < scrapes; i++)
        {
            text = await app.GetTestClient().GetStringAsync(new Uri("/metrics", UriKind.Relative));
        }

        return PrometheusText.Parse(text).Samples;
    }

    /// <summary>
    /// <c>/metrics</c> on a test server, with the daemon's own telemetry registration and <paramref name="options"/>' L4
    /// limit, the L4 metrics reading <paramref name="source"/> afresh on every scrape, <paramref name="state"/> applied.
    /// </summary>
    private static async Task<WebApplication> StartDaemonMetricsAsync(IL4BackendSource source, TelemetryOptions options, ILogger<L4BackendMetrics> log, ClusterState state)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTestServer();
        builder.Services.AddMeshTelemetry(options);
        builder.Services.AddSingleton(sp => new L4BackendMetrics(source, sp.GetRequiredService<IMeterFactory>(), log, TimeSpan.Zero, maxBackends: options.L4MaxBackends));
        var app = builder.Build();
        app.MapMeshMetrics();
        app.Services.GetRequiredService<L4BackendMetrics>().Update(state);
        await app.StartAsync();
        return app;
    }

    /// <summary>The warnings logged, as text.</summary>
    private sealed class WarningLog : ILogger<L4BackendMetrics>
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                Messages.Add(formatter(state, exception));
            }
        }
    }

    /// <summary>A task that is gone has no series left (a stale value would say it still holds connections).</summary>
    [Fact]
    public async Task A_removed_task_leaves_no_series_behind()
    {
        var source = new CountingSource(d => [.. d.ByIpvs.Values.Select(k => new L4BackendSample(k, 3, 1) { Counters = new L4BackendCounters(5, 6, 7, 8, 9) })]);
        var state = State();
        await using var app = await StartDaemonMetricsAsync(source, new TelemetryOptions("n1", null, TimeSpan.FromSeconds(15)), NullLogger<L4BackendMetrics>.Instance, state);
        var metrics = app.Services.GetRequiredService<L4BackendMetrics>();
        var http = app.GetTestClient();
        async Task<string[]> TasksExported() => [.. PrometheusText.Parse(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Samples
            .Where(s => s.Name.StartsWith("mesh_l4_backend_", StringComparison.Ordinal)).Select(s => s.Labels["task"]).Distinct().Order(StringComparer.Ordinal)];

        Assert.Equal(["web.1", "web.2"], await TasksExported());
        metrics.Update(StateTransitions.RemoveTask(state, "web.2"));
        Assert.Equal(["web.1"], await TasksExported());
    }

    [Fact]
    public void Conntrack_counts_open_connections_the_kernel_DNATed_to_each_task()
    {
        var state = State();
        var (web1, web2) = (Address(state, "web.1"), Address(state, "web.2"));
        _netns = $"l4m-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
        Run(null, "ip", "netns", "add", _netns);
        var path = "/run/netns/" + _netns;
        Run(_netns, "ip", "link", "set", "lo", "up");
        Run(_netns, "ip", "addr", "add", "198.18.77.1/32", "dev", "lo");
        Run(_netns, "ip", "addr", "add", web1 + "/32", "dev", "lo");
        Run(_netns, "ip", "addr", "add", web2 + "/32", "dev", "lo");
        // As the sandbox does it for 8080 → web.1:80 (one task here, so every connection goes to it).
        Run(_netns, "nft", $"add table ip t; add chain ip t out {{ type nat hook output priority -100; }}; add rule ip t out tcp dport 8080 dnat to {web1}:80");
        var listener = Own(NetworkNamespace.Run(path, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(web1, 80));
            s.Listen();
            return s;
        }));
        for (var i = 0; i < 3; i++)
        {
            Own(NetworkNamespace.Run(path, () =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Connect(new IPEndPoint(IPAddress.Parse("198.18.77.1"), 8080));
                return s;
            }));
            Own(listener.Accept());
        }

        var metrics = new L4BackendMetrics(new ConntrackBackendSource(path, 1000), _services.GetRequiredService<IMeterFactory>(), NullLogger<L4BackendMetrics>.Instance);
        metrics.Update(state);
        var observed = Observe();

        Assert.Equal(3, observed[("mesh.l4.backend.connections", "web", "8080/tcp", "web.1", "active")]); // established
        Assert.Equal(0, observed[("mesh.l4.backend.connections", "web", "8080/tcp", "web.1", "inactive")]);
        Assert.Equal(0, observed[("mesh.l4.backend.connections", "web", "8080/tcp", "web.2", "active")]);
        Assert.Equal(0, observed[("mesh.l4.backend.connections", "web", "8443/tcp", "web.1", "active")]);
        Assert.Equal(16, observed.Count); // the sandbox's 4 ports x 2 tasks x 2 states, nothing of IPVS's (its series, its counters)
    }

    private static ConntrackEntry Entry(ushort published, IPAddress task, ushort target, ConntrackStatus status = ConntrackStatus.Confirmed | ConntrackStatus.DestinationNat, byte protocol = 6) => new(
        new ConntrackTuple(IPAddress.Parse("198.18.0.100"), IPAddress.Parse("172.18.0.2"), protocol, 40000, published),
        new ConntrackTuple(task, IPAddress.Parse("10.255.0.2"), protocol, target, 40000),
        status);

    private Dictionary<(string Instrument, string Service, string Port, string Task, string DirectionOrState), long> Observe()
    {
        var factory = _services.GetRequiredService<IMeterFactory>();
        var measured = new Dictionary<(string, string, string, string, string), long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Name.StartsWith("mesh.l4.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var t = new Dictionary<string, string>();
            foreach (var tag in tags)
            {
                t[tag.Key] = (string)tag.Value!;
            }

            measured.Add((instrument.Name, t["service"], t["port"], t["task"], t.GetValueOrDefault("direction") ?? t.GetValueOrDefault("state", "")), value);
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return measured;
    }

    private T Own<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    private static void Run(string? netns, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? file : "ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (netns is not null)
        {
            foreach (var a in new[] { "netns", "exec", netns, file })
            {
                psi.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {stderr.Result}");
    }

    public void Dispose()
    {
        _owned.ForEach(d => d.Dispose());
        if (_netns is not null)
        {
            try
            {
                Run(null, "ip", "netns", "del", _netns);
            }
            catch (Xunit.Sdk.XunitException)
            {
                // best effort; the test's own assertion is the one that matters
            }
        }

        _services.Dispose();
    }

    private sealed class CountingSource(Func<L4BackendDirectory, IReadOnlyList<L4BackendSample>> read) : IL4BackendSource
    {
        public int Reads { get; private set; }

        public string Name => "test";

        public IEnumerable<L4BackendKey> Known(L4BackendDirectory directory) => directory.ByIpvs.Values;

        public IReadOnlyList<L4BackendSample> Read(L4BackendDirectory directory)
        {
            Reads++;
            return read(directory);
        }
    }

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks = 1;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
