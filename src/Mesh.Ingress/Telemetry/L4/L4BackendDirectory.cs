using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;

namespace Mesh.Ingress.Telemetry.L4;

/// <summary>The labels of one L4 backend series: the service, its published port(s) (<c>8080/tcp</c>) and the task.</summary>
public sealed record L4BackendKey(string Service, string Port, string Task);

/// <summary>
/// Which kernel objects belong to which known service, port and task, built from the cluster state alone: a conntrack
/// entry or an IPVS real server that matches nothing here is not counted, so no label value ever comes from the
/// kernel. Only the ports the ingress sandbox's kernel balances (<c>mode=ingress</c>, no <c>proxy=v2</c>) and only
/// running tasks with an ingress address.
/// </summary>
public sealed class L4BackendDirectory
{
    private L4BackendDirectory(
        FrozenDictionary<(byte Protocol, ushort Published, IPAddress Task, ushort Target), L4BackendKey> byDnat,
        FrozenDictionary<(uint Mark, IPAddress Task), L4BackendKey> byIpvs)
    {
        ByDnat = byDnat;
        ByIpvs = byIpvs;
    }

    public static L4BackendDirectory Empty { get; } = new(
        FrozenDictionary<(byte, ushort, IPAddress, ushort), L4BackendKey>.Empty,
        FrozenDictionary<(uint, IPAddress), L4BackendKey>.Empty);

    /// <summary>
    /// nftables dataplane: (IP protocol, published port, task address, target port) of a conntrack entry the sandbox
    /// DNATed (its original destination port, its reply source) → the series it counts in.
    /// </summary>
    public FrozenDictionary<(byte Protocol, ushort Published, IPAddress Task, ushort Target), L4BackendKey> ByDnat { get; }

    /// <summary>
    /// ipvs dataplane: (fwmark service, real server) → the series. One IPVS service carries all of a service's
    /// cluster-wide ports (and its ingress VIP), so its series' port label lists them all (<c>8080/tcp,8443/tcp</c>);
    /// <c>traffic=local</c> ports have their own mark and series.
    /// </summary>
    public FrozenDictionary<(uint Mark, IPAddress Task), L4BackendKey> ByIpvs { get; }

    public static L4BackendDirectory From(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var byDnat = new Dictionary<(byte, ushort, IPAddress, ushort), L4BackendKey>();
        var byIpvs = new Dictionary<(uint, IPAddress), L4BackendKey>();
        var tasks = state.Tasks
            .Where(t => t.State == TaskState.Running && t.Addresses.TryGetValue(OverlayNetwork.IngressName, out var a) && IPAddress.TryParse(a, out _))
            .ToLookup(t => t.Service, StringComparer.Ordinal);
        foreach (var service in state.Services)
        {
            var ports = IngressSandboxTable.MeshPorts(service).OrderBy(p => p.Protocol).ThenBy(p => p.Published).ToList();
            if (ports.Count == 0)
            {
                continue;
            }

            foreach (var task in tasks[service.Name])
            {
                var address = IPAddress.Parse(task.Addresses[OverlayNetwork.IngressName]);
                foreach (var port in ports)
                {
                    byDnat[(IpProtocol(port.Protocol), (ushort)port.Published, address, (ushort)port.Target)] = new L4BackendKey(service.Name, Label(port), task.Name);
                }

                foreach (var group in ports.GroupBy(p => p.Traffic == TrafficPolicy.Local))
                {
                    var mark = (uint)service.FirewallMark | (group.Key ? IpvsSandboxRules.LocalTrafficMark : 0);
                    byIpvs[(mark, address)] = new L4BackendKey(service.Name, string.Join(',', group.Select(Label)), task.Name);
                }
            }
        }

        return new L4BackendDirectory(byDnat.ToFrozenDictionary(), byIpvs.ToFrozenDictionary());
    }

    private static string Label(PublishedPort port) =>
        string.Create(CultureInfo.InvariantCulture, $"{port.Published}/{(port.Protocol == TransportProtocol.Udp ? "udp" : "tcp")}");

    private static byte IpProtocol(TransportProtocol protocol) => protocol == TransportProtocol.Udp ? (byte)17 : (byte)6;
}
