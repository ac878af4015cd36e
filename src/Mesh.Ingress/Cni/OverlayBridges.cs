namespace Mesh.Ingress.Cni;

/// <summary>
/// The one place that says which bridge carries an overlay network on a node: where a container's host-side leg is
/// enslaved. The daemon creates these bridges (<see cref="Overlay.OverlayNames"/>) once a task of its node is on the
/// network, with the ingress bridge at its default name (a daemon started with another <c>--ingress-bridge</c> is not
/// supported by the plugin yet).
/// </summary>
public static class OverlayBridges
{
    public static string Of(string network) => Overlay.OverlayNames.Bridge(network, new Dataplane.NodeNetworkOptions().IngressBridge);
}
