using Mesh.Discovery.Model;

namespace Mesh.Ingress.Dataplane;

/// <summary>The per-service backend choice inside the ingress sandbox (packet walk steps 2-4).</summary>
public interface IDataplane
{
    /// <summary>"nftables" or "ipvs", as shown by the API, <c>mesh lab status</c> and <c>mesh doctor</c>.</summary>
    string Name { get; }

    /// <summary>Converges the sandbox to <paramref name="state"/>; returns whether the kernel changed.</summary>
    Task<bool> ApplyAsync(ClusterState state, ClusterNode node, CancellationToken cancellationToken);
}
