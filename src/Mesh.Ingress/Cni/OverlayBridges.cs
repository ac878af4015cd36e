namespace Mesh.Ingress.Cni;

/// <summary>
/// The one place that says which bridge carries an overlay network on a node: where a container's host-side leg is
/// enslaved. Today these are the bridges the lab builds in each node namespace (<see cref="Lab.LabPlan.OverlayBridge"/>);
/// when the daemon owns the overlays (issue 10 part 1) this follows the daemon's names.
/// </summary>
public static class OverlayBridges
{
    public static string Of(string network) => Lab.LabPlan.OverlayBridge(network);
}
