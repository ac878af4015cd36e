using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;

namespace Mesh.Ingress.Telemetry.L4;

/// <summary>
/// The labels of one L4 backend series: the service, its published port(s) (<c>8080/tcp</c>) and the task. A value,
/// not an object: at 10,000 services × 5 tasks the directory holds 50,000 of them, and the strings are the state's own
/// names and one port label per distinct port (issue 12, daemon RSS).
/// </summary>
public readonly record struct L4BackendKey(string Service, string Port, string Task);

/// <summary>
/// Which kernel objects belong to which known service, port and task, built from the cluster state alone: a conntrack
/// entry or an IPVS real server that matches nothing here is not counted, so no label value ever comes from the
/// kernel. Only the ports the ingress sandbox's kernel balances (<c>mode=ingress</c>, no <c>proxy=v2</c>) and only
/// running tasks with an ingress address. Each map is built the first time it is read: a node's source reads only its
/// dataplane's (conntrack: <see cref="ByDnat"/>, IPVS: <see cref="ByIpvs"/>), and the other would be as large.
/// </summary>
public sealed class L4BackendDirectory
{
    private readonly Lazy<FrozenDictionary<(byte Protocol, ushort Published, IPAddress Task, ushort Target), L4BackendKey>> _byDnat;
    private readonly Lazy<FrozenDictionary<(uint Mark, IPAddress Task), L4BackendKey>> _byIpvs;

    private L4BackendDirectory(
        Func<FrozenDictionary<(byte Protocol, ushort Published, IPAddress Task, ushort Target), L4BackendKey>> byDnat,
        Func<FrozenDictionary<(uint Mark, IPAddress Task), L4BackendKey>> byIpvs)
    {
        _byDnat = new Lazy<FrozenDictionary<(byte, ushort, IPAddress, ushort), L4BackendKey>>(byDnat);
        _byIpvs = new Lazy<FrozenDictionary<(uint, IPAddress), L4BackendKey>>(byIpvs);
    }

    public static L4BackendDirectory Empty { get; } = new(
        () => FrozenDictionary<(byte, ushort, IPAddress, ushort), L4BackendKey>.Empty,
        () => FrozenDictionary<(uint, IPAddress), L4BackendKey>.Empty);

    /// <summary>
    /// nftables dataplane: (IP protocol, published port, task address, target port) of a conntrack entry the sandbox
    /// DNATed (its original destination port, its reply source) → the series it counts in.
    /// </summary>
    public FrozenDictionary<(byte Protocol, ushort Published, IPAddress Task, ushort Target), L4BackendKey> ByDnat => _byDnat.Value;

    /// <summary>
    /// ipvs dataplane: (fwmark service, real server) → the series. One IPVS service carries all of a service's
    /// cluster-wide ports (and its ingress VIP), so its series' port label lists them all (<c>8080/tcp,8443/tcp</c>);
    /// <c>traffic=local</c> ports have their own mark and series.
    /// </summary>
    public FrozenDictionary<(uint Mark, IPAddress Task), L4BackendKey> ByIpvs => _byIpvs.Value;

    public static L4BackendDirectory From(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new L4BackendDirectory(() => BuildDnat(state), () => BuildIpvs(state));
    }

    private static FrozenDictionary<(byte, ushort, IPAddress, ushort), L4BackendKey> BuildDnat(ClusterState state)
    {
        var byDnat = new Dictionary<(byte, ushort, IPAddress, ushort), L4BackendKey>();
        var labels = new PortLabels();
        foreach (var (service, ports, tasks) in Backends(state))
        {
            var portLabels = ports.Select(labels.Of).ToList();
            foreach (var (task, address) in tasks)
            {
                for (var i = 0; i < ports.Count; i++)
                {
                    byDnat[(IpProtocol(ports[i].Protocol), (ushort)ports[i].Published, address, (ushort)ports[i].Target)] = new L4BackendKey(service.Name, portLabels[i], task.Name);
                }
            }
        }

        return byDnat.ToFrozenDictionary();
    }

    private static FrozenDictionary<(uint, IPAddress), L4BackendKey> BuildIpvs(ClusterState state)
    {
        var byIpvs = new Dictionary<(uint, IPAddress), L4BackendKey>();
        var labels = new PortLabels();
        foreach (var (service, ports, tasks) in Backends(state))
        {
            // One IPVS service per mark: the cluster-wide ports share one, traffic=local ports another.
            var marks = ports.GroupBy(p => p.Traffic == TrafficPolicy.Local)
                .Select(g => ((uint)service.FirewallMark | (g.Key ? IpvsSandboxRules.LocalTrafficMark : 0), string.Join(',', g.Select(labels.Of))))
                .ToList();
            foreach (var (task, address) in tasks)
            {
                foreach (var (mark, label) in marks)
                {
                    byIpvs[(mark, address)] = new L4BackendKey(service.Name, label, task.Name);
                }
            }
        }

        return byIpvs.ToFrozenDictionary();
    }

    /// <summary>Each service with sandbox-balanced ports (ordered by protocol, then port), with its running tasks' ingress addresses.</summary>
    private static IEnumerable<(ClusterService Service, List<PublishedPort> Ports, List<(ServiceTask Task, IPAddress Address)> Tasks)> Backends(ClusterState state)
    {
        var tasks = state.Tasks
            .Where(t => t.State == TaskState.Running && t.Addresses.TryGetValue(OverlayNetwork.IngressName, out var a) && IPAddress.TryParse(a, out _))
            .ToLookup(t => t.Service, StringComparer.Ordinal);
        foreach (var service in state.Services)
        {
            var ports = IngressSandboxTable.MeshPorts(service).OrderBy(p => p.Protocol).ThenBy(p => p.Published).ToList();
            if (ports.Count > 0 && tasks.Contains(service.Name))
            {
                yield return (service, ports, tasks[service.Name].Select(t => (t, IPAddress.Parse(t.Addresses[OverlayNetwork.IngressName]))).ToList());
            }
        }
    }

    private static byte IpProtocol(TransportProtocol protocol) => protocol == TransportProtocol.Udp ? (byte)17 : (byte)6;

    /// <summary>One label string per distinct published port and protocol, shared by every task's key.</summary>
    private sealed class PortLabels
    {
        private readonly Dictionary<(int Published, TransportProtocol Protocol), string> _labels = [];

        public string Of(PublishedPort port)
        {
            if (!_labels.TryGetValue((port.Published, port.Protocol), out var label))
            {
                label = string.Create(CultureInfo.InvariantCulture, $"{port.Published}/{(port.Protocol == TransportProtocol.Udp ? "udp" : "tcp")}");
                _labels[(port.Published, port.Protocol)] = label;
            }

            return label;
        }
    }
}
