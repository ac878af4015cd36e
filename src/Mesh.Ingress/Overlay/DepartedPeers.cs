using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// Remote endpoints that left the plan, kept on the overlay for <see cref="Linger"/> more. A task leaves the plan when it
/// is deregistered, which takes it out of every node's backends at once; its process usually runs on while its open
/// connections drain (`mesh task rm` first, stop the task later). Those connections cross the overlay from every other
/// node's sandbox, through this node's neighbour and FDB entries for the task: removed with the backend, they cut every
/// connection still open to it (the churn scenario lost the requests in flight at each deregistration, 2-6 of 9,000).
/// So a departed endpoint keeps its entries until the linger runs out (removed at the first pass after it), unless its
/// address is taken meanwhile (by a new endpoint, remote or local: the new one wins at once), its node went away (its
/// VTEP is no other peer's: the node left or its lease expired, nothing there answers), or the node stopped carrying
/// its network.
/// </summary>
public sealed class DepartedPeers(TimeSpan linger, TimeProvider time)
{
    /// <summary>How long a deregistered remote endpoint stays reachable: longer than a task's usual drain before it is
    /// stopped (Docker stops with a 10 s grace, Kubernetes 30 s, the ipvs dataplane keeps a weight-0 real server 5 s).</summary>
    public static readonly TimeSpan DefaultLinger = TimeSpan.FromSeconds(60);

    private readonly Dictionary<(string Vxlan, string Ip), (OverlayPeer Peer, long Until)> _departed = [];
    /// <summary>
    /// The peers of the last plan: its own list, not a copy (the plan is a value; at 10,000 services × 5 tasks a set of
    /// them was 1.2 MB kept between passes). Only walked, when a plan comes that is not the same list.
    /// </summary>
    private IReadOnlyList<OverlayPeer> _last = [];

    public DepartedPeers()
        : this(DefaultLinger, TimeProvider.System)
    {
    }

    private bool _adopted;

    public TimeSpan Linger => linger;

    /// <summary>
    /// Takes what the kernel holds as the last plan, once, at the daemon's first read: the endpoints a restarted daemon
    /// finds there and its plan no longer has depart now, and linger like any other (a restart must not cut the
    /// connections of a task deregistered just before it). Only Mesh's own entries: a permanent neighbour on a Mesh
    /// VXLAN device whose MAC follows the address and a permanent FDB entry for that MAC.
    /// </summary>
    public void Adopt(OverlayKernelState kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (_adopted)
        {
            return;
        }

        _adopted = true;
        var found = new List<OverlayPeer>();
        foreach (var (vxlan, neighbours) in kernel.Neighbours.Where(n => n.Key.StartsWith(OverlayNames.VxlanPrefix, StringComparison.Ordinal)))
        {
            var fdb = kernel.Fdb.GetValueOrDefault(vxlan) ?? [];
            // The device's permanent FDB entries with a VTEP, by MAC (the first, as a search in the kernel's order found).
            var vteps = new Dictionary<ulong, uint>();
            foreach (var entry in fdb.Where(e => e.Permanent && e.Dst is not null))
            {
                vteps.TryAdd(entry.Mac, entry.Dst!.Value);
            }

            foreach (var neighbour in neighbours.Where(n => n.Permanent && IsMeshMac(n.Ip, n.Mac)))
            {
                if (vteps.TryGetValue(neighbour.Mac!.Value, out var vtep))
                {
                    found.Add(new OverlayPeer(vxlan, neighbour.IpText, IpValue.V4(vtep).ToString())); // its MAC is the one its address gives (IsMeshMac)
                }
            }
        }

        _last = found;
    }

    /// <summary>How many departed endpoints the last plan kept.</summary>
    public int Count => _departed.Count;

    /// <summary>
    /// <paramref name="plan"/> with the endpoints that left it within the linger added (sorted after its own peers, so
    /// equal inputs give an equal fingerprint). Records the peers that left since the last call: calling it again with
    /// the same plan records nothing new. <paramref name="addressesInUse"/>: every address the cluster state gives
    /// anyone (local tasks included, which are not peers), so a reused address is never shadowed by its old owner;
    /// asked for only while something lingers.
    /// </summary>
    public OverlayPlan Extend(OverlayPlan plan, Func<IReadOnlySet<string>> addressesInUse)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(addressesInUse);
        var now = time.GetTimestamp();
        if (ReferenceEquals(plan.Peers, _last) && _departed.Count == 0)
        {
            return plan; // the same plan again (every pass checks its fingerprint): nobody left, nothing to walk
        }

        var current = plan.Peers.Select(p => (p.Vxlan, p.Ip)).ToHashSet();
        foreach (var peer in _last.Where(p => !current.Contains((p.Vxlan, p.Ip))))
        {
            _departed[(peer.Vxlan, peer.Ip)] = (peer, now + (long)(linger.TotalSeconds * time.TimestampFrequency));
        }

        _last = plan.Peers;
        if (_departed.Count == 0)
        {
            return plan;
        }

        var inUse = addressesInUse();
        var vteps = plan.Peers.Select(p => p.Vtep).ToHashSet(StringComparer.Ordinal);
        var carried = plan.Links.Select(l => l.Vxlan).ToHashSet(StringComparer.Ordinal);
        foreach (var (key, (peer, until)) in _departed.ToList())
        {
            if (now >= until || current.Contains(key) || inUse.Contains(peer.Ip) || !vteps.Contains(peer.Vtep) || !carried.Contains(peer.Vxlan))
            {
                _departed.Remove(key);
            }
        }

        if (_departed.Count == 0)
        {
            return plan;
        }

        var kept = _departed.Values.Select(d => d.Peer).OrderBy(p => p.Vxlan, StringComparer.Ordinal).ThenBy(p => p.Ip, StringComparer.Ordinal);
        return plan with { Peers = [.. plan.Peers, .. kept] };
    }

    private static bool IsMeshMac(uint ip, ulong? mac) => mac == OverlayNames.MacValue(ip);
}
