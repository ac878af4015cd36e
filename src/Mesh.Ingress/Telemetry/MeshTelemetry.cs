using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Mesh.Ingress.Telemetry;

/// <summary>The daemon's meter and activity source, both named "Mesh", and the names of the spans and attributes it records.</summary>
public sealed class MeshTelemetry : IDisposable
{
    public const string Name = "Mesh";

    /// <summary>One pass of the node loop (read the state, converge the sandbox's links, the host's and the sandbox's rules).</summary>
    public const string ReconcileSpan = "mesh.reconcile";

    /// <summary>A pass of the task loop over the local tasks' namespaces (the node loop's is <see cref="ReconcileSpan"/>).</summary>
    public const string ReconcileTasksSpan = "mesh.reconcile.tasks";

    /// <summary>One namespace brought to the state: the host, the ingress sandbox, or a task's namespace.</summary>
    public const string ConvergeSpan = "mesh.converge";

    /// <summary>The store revision a span works from (reconcile, converge) or that the node had applied (API requests).</summary>
    public const string RevisionAttribute = "mesh.revision";

    /// <summary>Which namespace a converge span is about: "host", "sandbox" or "task".</summary>
    public const string NamespaceAttribute = "mesh.namespace";

    public MeshTelemetry(IMeterFactory meters)
    {
        var meter = meters.Create(Name);
        Syncs = meter.CreateCounter<long>("mesh.reconcile.syncs", description: "Reconcile passes, by result");
        SyncDuration = meter.CreateHistogram<double>("mesh.reconcile.duration", unit: "s", description: "Time of one reconcile pass",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ReconcileBuckets });
        KernelChanges = meter.CreateCounter<long>("mesh.reconcile.kernel_changes", description: "Transactions applied to the kernel, by object");
    }

    /// <summary>A pass takes milliseconds when nothing changed and seconds at thousands of services (BENCHMARKS.md, scale).</summary>
    public static IReadOnlyList<double> ReconcileBuckets { get; } = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    public ActivitySource Activities { get; } = new(Name);

    public Counter<long> Syncs { get; }

    public Histogram<double> SyncDuration { get; }

    public Counter<long> KernelChanges { get; }

    /// <summary>A converge span for one namespace of this node, under the running reconcile span.</summary>
    public Activity? StartConverge(string kind, string? name, long revision)
    {
        var activity = Activities.StartActivity(ConvergeSpan);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(NamespaceAttribute, kind);
            if (name is not null)
            {
                activity.SetTag("mesh.task", name);
            }

            activity.SetTag(RevisionAttribute, revision);
        }

        return activity;
    }

    public void Dispose() => Activities.Dispose();
}
