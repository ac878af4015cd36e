using System.Collections.Concurrent;
using System.Diagnostics;
using Mesh.Ingress.Daemon.Systemd;
using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Mesh.Ingress.Tests.Doubles;

namespace Mesh.Ingress.Tests.Telemetry;

/// <summary>
/// The daemon's reconciler, in this process, over a real embedded store: each pass is a <c>mesh.reconcile</c> span
/// carrying the revision of the state it read, with the namespaces it converged as child spans. Every kernel command
/// fails here (a runner that runs nothing, namespaces that do not exist), so every stage fails, the overlays first, and the
/// reconcile span carries the errors; nothing on the machine is touched.
/// </summary>
public sealed class ReconcileTracingTests
{
    [Fact]
    public async Task A_reconcile_pass_is_a_span_with_the_store_revision_and_its_namespaces_as_children()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == MeshTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var revision = (await store.GetStateAsync()).Revision;

        using var meters = new TestMeterFactory();
        using var telemetry = new MeshTelemetry(meters);
        var runner = new RefusingRunner();
        var kernel = new RefusingOverlayKernel();
        var refusing = new Mesh.Ingress.Tests.Kernel.FakeLinks { Refuse = true };
        var network = new NodeNetworkOptions { IngressSandbox = $"mesh-trace-test-{Environment.ProcessId}" };
        var options = new DaemonOptions { Node = "n1", AdvertiseAddress = "198.18.0.11", Network = network };
        var nft = new NfTablesExecutor();
        var sandbox = new IngressSandbox(refusing, network);
        var dataplane = new NftablesDataplane(nft, sandbox);
        var cleanup = new DataplaneSwitchCleanup(null, NullLogger<DataplaneSwitchCleanup>.Instance);
        var iptables = new IptablesExecutor(runner, IptablesFlavour.Nft);
        await using var resolvers = new TaskResolvers(new ClusterDnsAuthority(), [], NullLoggerFactory.Instance);
        var taskRules = new TaskRulesWriter(iptables, nft, true, runner, NullLogger<TaskRulesWriter>.Instance);
        // The host's rules go to a namespace that does not exist: the pass goes on past the failing overlays now, and the
        // test's own namespace (the machine's) must not get the host's table.
        var planner = new Mesh.Ingress.Planning.NodePlanner(true, network, new IpvsOptions(), new NetworkNamespacePath($"/nonexistent/mesh-trace-test-{Environment.ProcessId}"));
        var executor = new TaskNamespaceExecutor(dataplane, cleanup, taskRules, new TaskResolvConfWriter([], "/etc/resolv.conf"), new ClientReplyRoutes(refusing));
        var tasks = new TaskNamespaceSync(planner, executor, cleanup, taskRules, nft, resolvers, new TaskNamespaceGuard(network), options, telemetry, NullLogger<TaskNamespaceSync>.Instance);
        var overlays = new Mesh.Ingress.Overlay.OverlayNetworks(kernel, options, NullLogger<Mesh.Ingress.Overlay.OverlayNetworks>.Instance);
        var egress = new Mesh.Ingress.Egress.TaskEgress(refusing, new TaskNamespaceGuard(network), options, NullLogger<Mesh.Ingress.Egress.TaskEgress>.Instance);
        using var reconciler = new NodeReconciler(store, dataplane, planner, new SandboxExecutor(dataplane, cleanup, sandbox), sandbox, overlays, egress, new HostRulesWriter(iptables, nft, true, runner, NullLogger<HostRulesWriter>.Instance), tasks, options,
            new NodeStatus { Node = "n1", Store = "embedded" }, telemetry, new SyncLoopLiveness(TimeProvider.System), new Mesh.Ingress.Health.LocalTaskCounts(), NullLogger<NodeReconciler>.Instance);

        await reconciler.StartAsync(CancellationToken.None);
        var clock = Stopwatch.StartNew();
        while (!spans.Any(s => s.OperationName == MeshTelemetry.ReconcileSpan) && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(50);
        }

        await reconciler.StopAsync(CancellationToken.None);
        Assert.True(kernel.Reads > 0, "the pass never read the overlays: it never reached the kernel");

        var reconcile = spans.First(s => s.OperationName == MeshTelemetry.ReconcileSpan);
        // The daemon registered its node first, so the state it read is one revision past the service's.
        var read = Assert.IsType<long>(reconcile.GetTagItem(MeshTelemetry.RevisionAttribute));
        Assert.True(read > revision, $"revision {read}, the store was at {revision} before the node registered");
        Assert.Equal(read, (await store.GetStateAsync()).Revision);
        Assert.Equal(ActivityStatusCode.Error, reconcile.Status);
        Assert.Contains("RTM_GETLINK dump failed: EPERM", reconcile.StatusDescription, StringComparison.Ordinal);

        var links = spans.First(s => s.OperationName == MeshTelemetry.ConvergeSpan && s.ParentSpanId == reconcile.SpanId);
        Assert.Equal("overlay", links.GetTagItem(MeshTelemetry.NamespaceAttribute));
        Assert.Equal(read, links.GetTagItem(MeshTelemetry.RevisionAttribute));
        Assert.Equal(reconcile.TraceId, links.TraceId);
    }
}
