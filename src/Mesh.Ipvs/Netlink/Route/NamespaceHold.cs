using LibC = Tmds.Linux.LibC;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// A network namespace held open by its file (see <see cref="RouteHandle.HoldNamespace"/>): which namespace it is, and
/// the id a <see cref="RouteHandle"/>'s namespace knows it by. The kernel frees a namespace's id only when it frees the
/// namespace, and gives a freed id to the next namespace that needs one; while this is not disposed, the id names this
/// namespace and no other, so links read meanwhile whose IFLA_LINK_NETNSID is <see cref="Id"/> have their other end in
/// it. Hold it only for that reading: a held namespace outlives its deletion.
/// </summary>
public sealed class NamespaceHold : IDisposable
{
    private int _fd;

    internal NamespaceHold(int fd, NetworkNamespaceId @namespace, int id)
    {
        _fd = fd;
        Namespace = @namespace;
        Id = id;
    }

    /// <summary>The namespace's identity (its nsfs device and inode).</summary>
    public NetworkNamespaceId Namespace { get; }

    /// <summary>Its id in the namespace of the handle that took the hold.</summary>
    public int Id { get; }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            LibC.close(fd);
        }
    }
}
