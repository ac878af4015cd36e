using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Overlay;

/// <summary>One overlay network as this node carries it: a bridge with a VXLAN device as a port.</summary>
public sealed record OverlayLink(string Network, int Vni, string Bridge, string Vxlan);

/// <summary>
/// A remote endpoint on an overlay: its MAC is at <see cref="Vtep"/> (an FDB entry), its IP has that MAC (a neighbour
/// entry). A value in the plan's array, not an object each: a node carries one per remote task (50,000 at 10,000
/// services × 5 tasks), and its three strings are the state's and the links' own.
/// </summary>
public readonly record struct OverlayPeer(string Vxlan, string Ip, string Vtep)
{
    /// <summary>
    /// The endpoint's MAC, Docker's rule from its address (<see cref="OverlayNames.Mac(string)"/>): made when a change
    /// is planned, not kept per peer (a 17-character string each, ~3 MB at 50,000 peers).
    /// </summary>
    public string Mac => OverlayNames.Mac(Ip);
}

/// <summary>
/// What this node's overlays should be, derived from the cluster state alone (<see cref="OverlayPlanner"/>): the
/// networks it carries, sending from <see cref="Local"/>, and one peer per remote endpoint on them. The underlay (the
/// interface holding <see cref="Local"/>, and so the links' MTU) is the kernel's to say: the executor finds it
/// (<see cref="Underlay"/>). A value: equal fingerprints mean nothing to do.
/// </summary>
public sealed record OverlayPlan(string Local, IReadOnlyList<OverlayLink> Links, IReadOnlyList<OverlayPeer> Peers)
{
    /// <summary>The state's tasks and nodes, whose addresses <see cref="AddressesInUse"/> collects when asked.</summary>
    public IReadOnlyList<ServiceTask> Tasks { get; init; } = [];

    public IReadOnlyList<ClusterNode> Nodes { get; init; } = [];

    /// <summary>
    /// Every address the cluster state gives anyone (local tasks and sandboxes included, which are not peers), so a
    /// departed endpoint's reused address is never shadowed by its old owner (<see cref="DepartedPeers"/>). Made when
    /// asked, which is only while a departed endpoint lingers: at 10,000 services × 10 tasks the set costs more than
    /// planning one replaced task.
    /// </summary>
    public IReadOnlySet<string> AddressesInUse => field ??=
        Tasks.SelectMany(t => t.Addresses.Values).Concat(Nodes.Select(n => n.IngressSandboxIp)).OfType<string>().ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The SHA-256 of the plan's text (its address, each link, each peer, one line each; a peer's MAC follows from its
    /// address, so it is not in the line), to tell whether anything changed
    /// since the last pass. Hashed line by line: at 10,000 services × 5 tasks the text itself was a 6 MB string, made
    /// on every pass in the large object heap and kept for the next. Not cached: <c>with</c> would copy it into a plan
    /// with other peers (<see cref="DepartedPeers"/>).
    /// </summary>
    public string Fingerprint
    {
        get
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var line = new ArrayBufferWriter<byte>(256);
            void Add(string text)
            {
                line.ResetWrittenCount();
                Encoding.UTF8.GetBytes(text, line);
                line.Write("\n"u8);
                sha.AppendData(line.WrittenSpan);
            }

            Add(Local);
            foreach (var l in Links)
            {
                Add(string.Create(CultureInfo.InvariantCulture, $"L {l.Network} {l.Vni} {l.Bridge} {l.Vxlan}"));
            }

            foreach (var p in Peers)
            {
                // The line written in parts: a string per peer was 50,000 of them at every pass at 10,000 × 5.
                line.ResetWrittenCount();
                line.Write("P "u8);
                Encoding.UTF8.GetBytes(p.Vxlan, line);
                line.Write(" "u8);
                Encoding.UTF8.GetBytes(p.Ip, line);
                line.Write(" "u8);
                Encoding.UTF8.GetBytes(p.Vtep, line);
                line.Write("\n"u8);
                sha.AppendData(line.WrittenSpan);
            }

            return Convert.ToHexString(sha.GetHashAndReset());
        }
    }
}
