using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Mesh.Ingress.Telemetry;

/// <summary>The daemon's meter and activity source, both named "Mesh".</summary>
public sealed class MeshTelemetry : IDisposable
{
    public const string Name = "Mesh";

    public MeshTelemetry(IMeterFactory meters)
    {
        var meter = meters.Create(Name);
        Syncs = meter.CreateCounter<long>("mesh.reconcile.syncs", description: "Reconcile passes, by result");
        SyncDuration = meter.CreateHistogram<double>("mesh.reconcile.duration", unit: "s", description: "Time of one reconcile pass");
        KernelChanges = meter.CreateCounter<long>("mesh.reconcile.kernel_changes", description: "Transactions applied to the kernel, by object");
    }

    public ActivitySource Activities { get; } = new(Name);

    public Counter<long> Syncs { get; }

    public Histogram<double> SyncDuration { get; }

    public Counter<long> KernelChanges { get; }

    public void Dispose() => Activities.Dispose();
}
