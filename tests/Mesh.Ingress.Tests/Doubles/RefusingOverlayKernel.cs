using Mesh.Ingress.Kernel;
using Mesh.Ingress.Overlay;
using Mesh.Ipvs.Netlink;

namespace Mesh.Ingress.Tests.Doubles;

/// <summary>The overlays' kernel refusing every read, as a namespace without the capability would; it counts the reads.</summary>
public sealed class RefusingOverlayKernel : IOverlayKernel
{
    private int _reads;

    public int Reads => Volatile.Read(ref _reads);

    public NetworkNamespacePath Netns => NetworkNamespacePath.Current;

    public OverlayKernelState Read()
    {
        Interlocked.Increment(ref _reads);
        throw new NetlinkException("RTM_GETLINK dump", Errno.EPERM);
    }

    public void Apply(OverlayChange change) => throw new InvalidOperationException("the test's kernel is never written");
}
