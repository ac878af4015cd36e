using System.Globalization;
using System.Net;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Cni;

/// <summary>
/// The kernel side of the plugin: creates, checks and deletes a container's legs through rtnetlink, in the runtime's
/// namespace (veth pairs created with their peer in the container, host ends on their bridges) and inside the
/// container (addresses, up). No process is started. Every name and address was validated before (interface names,
/// canonical netns paths, IPv4 addresses); a kernel refusal becomes a CNI error naming the operation and the link.
/// </summary>
public sealed class CniLinks
{
    /// <summary>How long ADD waits for the daemon to make a network's bridge (it does once the task is registered).</summary>
    public static readonly TimeSpan BridgeWait = TimeSpan.FromSeconds(10);

    public async Task AddAsync(string netns, IReadOnlyList<CniLeg> legs, int mtu, CancellationToken ct)
    {
        // The daemon carries a network on its node only while a task of the node is on it: for the node's first
        // container on a network, the bridge appears once the daemon has seen the task this ADD just registered.
        foreach (var bridge in legs.Select(l => l.Bridge).Distinct(StringComparer.Ordinal))
        {
            await WaitForBridgeAsync(bridge, ct);
        }

        Kernel(null, h =>
        {
            foreach (var leg in legs)
            {
                h.AddLink(new Link { Name = leg.HostInterface, Kind = LinkKinds.Veth, Mtu = mtu, Peer = new VethPeer(leg.ContainerInterface, leg.Mac, mtu, netns) });
                var bridge = h.RequireLink(leg.Bridge);
                h.ChangeLink(new LinkChange(h.RequireLink(leg.HostInterface).Index) { MasterIndex = bridge.Index, Up = true }, leg.HostInterface);
            }
        });
        Kernel(netns, h =>
        {
            h.ChangeLink(new LinkChange(h.RequireLink("lo").Index) { Up = true }, "lo");
            foreach (var leg in legs)
            {
                var link = h.RequireLink(leg.ContainerInterface);
                var cidr = leg.Cidr.Split('/');
                h.ReplaceAddress(new Address(link.Index, IPAddress.Parse(cidr[0]), int.Parse(cidr[1], CultureInfo.InvariantCulture)), leg.ContainerInterface);
                h.ChangeLink(new LinkChange(link.Index) { Up = true }, leg.ContainerInterface);
            }
        });
    }

    private static async Task WaitForBridgeAsync(string bridge, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (Kernel(null, h => h.GetLink(bridge)) is null)
        {
            if (clock.Elapsed > BridgeWait)
            {
                throw new CniException(CniErrorCode.TryAgainLater, string.Create(CultureInfo.InvariantCulture, $"the Mesh daemon has not made the bridge {bridge} within {BridgeWait.TotalSeconds:0} s"), $"no link {bridge} in this namespace");
            }

            await Task.Delay(50, ct);
        }
    }

    /// <summary>
    /// Deletes every host end named for the container (the peers go with them); none left is success. Only veth
    /// devices: a device of another kind that happens to carry the name is not ours to delete.
    /// </summary>
    public Task DeleteAsync(string containerId, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        Kernel(null, h =>
        {
            foreach (var link in HostEnds(h, containerId))
            {
                try
                {
                    h.DeleteLink(link.Index, link.Name);
                }
                catch (Mesh.Ipvs.Netlink.NetlinkException e) when (e.Errno == Mesh.Ipvs.Netlink.Errno.ENODEV)
                {
                    // Gone between the listing and the delete: the daemon removes the legs of a namespace that was
                    // deleted (Overlay/TaskLegs), and the kernel removes a veth whose peer's namespace went. Gone is
                    // what DEL wants.
                }
            }
        });
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> HostEndsAsync(string containerId, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<IReadOnlyList<string>>(Kernel(null, h => HostEnds(h, containerId).Select(l => l.Name).ToArray()));
    }

    /// <summary>What is wrong with the legs, one line each; empty when every leg is as ADD made it.</summary>
    public Task<IReadOnlyList<string>> CheckAsync(string netns, IReadOnlyList<CniLeg> legs, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var problems = new List<string>();
        var (hostLinks, hostNames) = Kernel(null, h =>
        {
            var all = h.GetLinks();
            return (all.ToDictionary(l => l.Name, StringComparer.Ordinal), all.ToDictionary(l => l.Index, l => l.Name));
        });
        if (!File.Exists(netns))
        {
            return Task.FromResult<IReadOnlyList<string>>([$"the container's namespace {netns} does not exist"]);
        }

        var (insideLinks, insideAddresses) = Kernel(netns, h => (
            h.GetLinks().ToDictionary(l => l.Name, StringComparer.Ordinal),
            h.GetAddresses(AddressFamilyFilter.Inet).ToLookup(a => a.LinkIndex, a => string.Create(CultureInfo.InvariantCulture, $"{a.Ip}/{a.PrefixLength}"))));
        foreach (var leg in legs)
        {
            if (!hostLinks.TryGetValue(leg.HostInterface, out var h))
            {
                problems.Add($"host end {leg.HostInterface} of {leg.Network} is missing");
            }
            else if (hostNames.GetValueOrDefault(h.MasterIndex) != leg.Bridge)
            {
                problems.Add($"host end {leg.HostInterface} of {leg.Network} is not on bridge {leg.Bridge}");
            }

            if (!insideLinks.TryGetValue(leg.ContainerInterface, out var c))
            {
                problems.Add($"{leg.ContainerInterface} ({leg.Network}) is missing in the container");
                continue;
            }

            if (c.Mac != leg.Mac)
            {
                problems.Add($"{leg.ContainerInterface} has MAC {c.Mac}, not {leg.Mac}");
            }

            if (!insideAddresses[c.Index].Contains(leg.Cidr, StringComparer.Ordinal))
            {
                problems.Add($"{leg.ContainerInterface} lacks {leg.Cidr}");
            }
        }

        return Task.FromResult<IReadOnlyList<string>>(problems);
    }

    private static IEnumerable<Link> HostEnds(RouteHandle h, string containerId)
    {
        var prefix = CniLeg.HostPrefix(containerId);
        return h.GetLinks().Where(l => l.Kind == LinkKinds.Veth && l.Name.StartsWith(prefix, StringComparison.Ordinal) && l.Name.Length > prefix.Length
            && l.Name.AsSpan(prefix.Length).IndexOfAnyExceptInRange('0', '9') < 0).ToArray();
    }

    private static void Kernel(string? netns, Action<RouteHandle> work) => Kernel(netns, h =>
    {
        work(h);
        return true;
    });

    /// <summary>Runs <paramref name="work"/> on a socket in <paramref name="netns"/> (null: the runtime's); a kernel refusal becomes a CNI error.</summary>
    private static T Kernel<T>(string? netns, Func<RouteHandle, T> work)
    {
        try
        {
            using var handle = RouteHandle.Open(netns);
            return work(handle);
        }
        catch (NetlinkException e)
        {
            throw new CniException(CniErrorCode.LinkFailure, $"{e.Operation} failed in {netns ?? "the runtime's namespace"}", e.Message);
        }
        catch (Mesh.Ipvs.NetworkNamespaceException e)
        {
            throw new CniException(CniErrorCode.LinkFailure, $"cannot enter {netns}", e.Message);
        }
    }
}
