using System.Collections.Concurrent;
using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Telemetry;
using Mesh.Ingress.Tests.Doubles;
using Microsoft.Extensions.Logging.Abstractions;

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

        // The host's rules go to a namespace that does not exist: the pass goes on past the failing overlays now, and the
        // test's own namespace (the machine's) must not get the host's table.
        await using var node = new RefusingNodeReconciler(store, $"mesh-trace-test-{Environment.ProcessId}", new NetworkNamespacePath($"/nonexistent/mesh-trace-test-{Environment.ProcessId}"));
        var (reconciler, kernel) = (node.Reconciler, node.OverlayKernel);

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
