using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.Discovery.Model;
using Microsoft.Extensions.Logging;

namespace Mesh.Discovery.Store;

/// <summary>
/// Re-validates what a store hands back before anything uses it: each object by <see cref="ObjectRules"/> (the same
/// rules the API's transitions apply to what they create), then the objects against each other (unique names, marks,
/// published ports and addresses; networks and services that exist). An object that fails is set aside: left out of
/// the state, logged once per distinct problem, counted in <c>mesh.store.rejected_objects</c>; everything else still
/// converges. Earlier objects (in creation order) win a conflict, so a later forged object cannot evict a real one.
/// </summary>
public sealed partial class StoredObjectValidator(ILogger logger, StoreMetrics metrics, ReservedPorts reserved, string source)
{
    /// <summary>
    /// <see cref="MeshJson.Options"/>, except that fields this version does not know are skipped: in a rolling upgrade
    /// a newer writer may already have written them, and one object must not make the whole state unreadable.
    /// </summary>
    public static JsonSerializerOptions ReadOptions { get; } = Lenient();

    /// <summary>Problems already logged (a daemon re-reads the state on every pass: say it once, count it every time).</summary>
    private readonly HashSet<string> _logged = [];

    public ReservedPorts Reserved => reserved;

    /// <summary>Decodes and checks one stored object; null (and logged, and counted) when it cannot be used.</summary>
    public T? Decode<T>(string key, string json, string? expectedName = null) where T : class
    {
        T value;
        try
        {
            value = JsonSerializer.Deserialize<T>(json, ReadOptions) ?? throw new JsonException("null");
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            Reject(Kind<T>(), key, $"undecodable: {e.Message}");
            return null;
        }

        return Check(value, key, expectedName) ? value : null;
    }

    /// <summary>Checks one decoded object by its kind's rules (and, for a store keyed by name, that the key is its name).</summary>
    public bool Check<T>(T value, string key, string? expectedName = null) where T : class
    {
        try
        {
            switch (value)
            {
                case OverlayNetwork n:
                    ObjectRules.Network(n);
                    break;
                case ClusterNode n:
                    ObjectRules.Node(n);
                    break;
                case ClusterService s:
                    ObjectRules.Service(s, reserved);
                    break;
                case ServiceTask t:
                    ObjectRules.Task(t);
                    break;
                default:
                    throw new ArgumentException($"not a stored object: {typeof(T).Name}", nameof(value));
            }

            if (expectedName is not null && !string.Equals(Name(value), expectedName, StringComparison.Ordinal))
            {
                throw new ValidationException("name", $"'{Validate.Printable(Name(value))}' is not the name its key says ('{Validate.Printable(expectedName)}')");
            }

            return true;
        }
        catch (Exception e) when (e is ValidationException or ArgumentException or NullReferenceException or FormatException)
        {
            // NullReferenceException: a JSON null where the model says "never null" (the lenient reader lets some through).
            Reject(Kind<T>(), key, e.Message);
            return false;
        }
    }

    /// <summary>Every object checked on its own, then against the others: what a joined daemon or the state file hands over.</summary>
    public ClusterState Screen(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var networks = Keep(state.Networks, n => n.Name == OverlayNetwork.IngressName || Check(n, $"networks/{n.Name}"));
        var nodes = Keep(state.Nodes, n => Check(n, $"nodes/{n.Name}"));
        var services = Keep(state.Services, s => Check(s, $"services/{s.Name}"));
        var tasks = Keep(state.Tasks, t => Check(t, $"tasks/{t.Service}/{t.Name}"));
        var checkedState = networks.Count == state.Networks.Count && nodes.Count == state.Nodes.Count && services.Count == state.Services.Count && tasks.Count == state.Tasks.Count
            ? state
            : state with { Networks = networks, Nodes = nodes, Services = services, Tasks = tasks };
        return Consistent(checkedState);
    }

    /// <summary>
    /// The objects against each other, in creation order, O(total size) with hash sets. Returns
    /// <paramref name="state"/> itself when nothing had to be set aside.
    /// </summary>
    public ClusterState Consistent(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var rejected = false;
        var networks = new Dictionary<string, OverlayNetwork>(StringComparer.OrdinalIgnoreCase) { [OverlayNetwork.IngressName] = OverlayNetwork.Ingress };
        var vnis = new HashSet<int> { OverlayNetwork.Ingress.Vni };
        var keptNetworks = new List<OverlayNetwork> { OverlayNetwork.Ingress };
        foreach (var n in state.Networks)
        {
            string? problem = n.Name == OverlayNetwork.IngressName
                ? (n == OverlayNetwork.Ingress ? null : $"the ingress network is fixed at {OverlayNetwork.Ingress.Subnet} VNI {OverlayNetwork.Ingress.Vni}")
                : networks.ContainsKey(n.Name) ? "network name used twice"
                : !vnis.Add(n.Vni) ? $"VNI {n.Vni} used twice"
                : null;
            if (problem is not null)
            {
                rejected |= Reject("network", $"networks/{n.Name}", problem);
                continue;
            }

            if (n.Name != OverlayNetwork.IngressName)
            {
                networks[n.Name] = n;
                keptNetworks.Add(n);
            }
        }

        var used = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
        HashSet<string> Used(string network) => used.TryGetValue(network, out var set) ? set : used[network] = new(StringComparer.Ordinal);

        var nodes = new List<ClusterNode>();
        var nodeNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var n in state.Nodes)
        {
            string? problem = nodeNames.Contains(n.Name) ? "node name used twice"
                : Used(OverlayNetwork.IngressName).Contains(n.IngressSandboxIp) ? $"ingress address {n.IngressSandboxIp} used twice"
                : null;
            if (problem is not null)
            {
                rejected |= Reject("node", $"nodes/{n.Name}", problem);
                continue;
            }

            nodeNames.Add(n.Name);
            Used(OverlayNetwork.IngressName).Add(n.IngressSandboxIp);
            nodes.Add(n);
        }

        var dnsNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var marks = new HashSet<int>();
        var published = new HashSet<(int, TransportProtocol)>();
        var routed = new HashSet<(string, string)>();
        var services = new Dictionary<string, ClusterService>(StringComparer.OrdinalIgnoreCase);
        var keptServices = new List<ClusterService>();
        foreach (var s in state.Services)
        {
            var problem = ServiceProblem(s, networks, dnsNames, marks, published, Used)
                ?? (s.Routes.FirstOrDefault(r => routed.Contains(r.Identity())) is { } route ? $"route {route.Host}{route.PathPrefix} already goes to another service" : null);
            if (problem is not null)
            {
                rejected |= Reject("service", $"services/{s.Name}", problem);
                continue;
            }

            dnsNames.Add(s.Name);
            dnsNames.UnionWith(s.Aliases);
            marks.Add(s.FirewallMark);
            published.UnionWith(s.Ports.Select(p => (p.Published, p.Protocol)));
            routed.UnionWith(s.Routes.Select(r => r.Identity()));
            foreach (var (net, vip) in s.Vips)
            {
                Used(net).Add(vip);
            }

            services[s.Name] = s;
            keptServices.Add(s);
        }

        var taskNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var keptTasks = new List<ServiceTask>();
        foreach (var t in state.Tasks)
        {
            var problem = TaskProblem(t, networks, services, dnsNames, taskNames, Used);
            if (problem is not null)
            {
                rejected |= Reject("task", $"tasks/{t.Service}/{t.Name}", problem);
                continue;
            }

            taskNames.Add(t.Name);
            foreach (var (net, ip) in t.Addresses)
            {
                Used(net).Add(ip);
            }

            keptTasks.Add(t);
        }

        return rejected || keptNetworks.Count != state.Networks.Count
            ? state with { Networks = keptNetworks, Nodes = nodes, Services = keptServices, Tasks = keptTasks }
            : state;
    }

    private static string? ServiceProblem(
        ClusterService s, Dictionary<string, OverlayNetwork> networks, HashSet<string> dnsNames, HashSet<int> marks,
        HashSet<(int, TransportProtocol)> published, Func<string, HashSet<string>> used)
    {
        if (dnsNames.Contains(s.Name) || s.Aliases.FirstOrDefault(dnsNames.Contains) is not null)
        {
            return "its name or an alias is already used by another service";
        }

        if (marks.Contains(s.FirewallMark))
        {
            return $"firewall mark 0x{s.FirewallMark:x} used twice";
        }

        if (s.Ports.FirstOrDefault(p => published.Contains((p.Published, p.Protocol))) is { } port)
        {
            return $"port {port} is already published by another service";
        }

        if (s.Networks.FirstOrDefault(n => !networks.ContainsKey(n)) is { } missing)
        {
            return $"network '{Validate.Printable(missing)}' does not exist";
        }

        var attached = StateTransitions.AttachedNetworks(s).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var (net, vip) in s.Vips)
        {
            if (!attached.Contains(net))
            {
                return $"VIP on network '{Validate.Printable(net)}', which the service does not join";
            }

            if (AddressProblem(vip, networks[net], used) is { } problem)
            {
                return $"VIP {problem}";
            }
        }

        return null;
    }

    private static string? TaskProblem(
        ServiceTask t, Dictionary<string, OverlayNetwork> networks, Dictionary<string, ClusterService> services,
        HashSet<string> dnsNames, HashSet<string> taskNames, Func<string, HashSet<string>> used)
    {
        if (taskNames.Contains(t.Name) || dnsNames.Contains(t.Name))
        {
            return "task name already used";
        }

        if (t.Aliases.FirstOrDefault(dnsNames.Contains) is { } alias)
        {
            return $"alias '{alias}' is a service's name";
        }

        if (!services.TryGetValue(t.Service, out var service))
        {
            return $"service '{t.Service}' does not exist";
        }

        var attached = StateTransitions.AttachedNetworks(service).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var (net, ip) in t.Addresses)
        {
            if (!attached.Contains(net) || !networks.ContainsKey(net))
            {
                return $"address on network '{Validate.Printable(net)}', which its service does not join";
            }

            if (AddressProblem(ip, networks[net], used) is { } problem)
            {
                return $"address {problem}";
            }
        }

        return null;
    }

    private static string? AddressProblem(string ip, OverlayNetwork network, Func<string, HashSet<string>> used)
    {
        try
        {
            ObjectRules.HostAddress("address", ip, network);
        }
        catch (ValidationException e)
        {
            return e.Message;
        }

        return used(network.Name).Contains(ip) ? $"{ip} is used twice on network '{network.Name}'" : null;
    }

    private bool Reject(string kind, string key, string reason)
    {
        metrics.Rejected(kind, source);
        var printableKey = Validate.Printable(key);
        var printableReason = Validate.Printable(reason.Length > 300 ? reason[..300] : reason);
        bool first;
        lock (_logged)
        {
            if (_logged.Count >= 10_000)
            {
                _logged.Clear(); // bounded memory: after that many distinct problems, say them again
            }

            first = _logged.Add(printableKey + "\n" + printableReason);
        }

        if (first)
        {
            LogRejected(kind, printableKey, source, printableReason);
        }

        return true;
    }

    private static IReadOnlyList<T> Keep<T>(IReadOnlyList<T> items, Func<T, bool> keep)
    {
        var kept = items.Where(keep).ToArray();
        return kept.Length == items.Count ? items : kept;
    }

    private static string Kind<T>() => typeof(T).Name switch
    {
        nameof(OverlayNetwork) => "network",
        nameof(ClusterNode) => "node",
        nameof(ClusterService) => "service",
        nameof(ServiceTask) => "task",
        _ => "object",
    };

    private static string Name(object value) => value switch
    {
        OverlayNetwork n => n.Name,
        ClusterNode n => n.Name,
        ClusterService s => s.Name,
        ServiceTask t => $"{t.Service}/{t.Name}", // its key: tasks/<service>/<task>
        _ => "",
    };

    private static JsonSerializerOptions Lenient()
    {
        var options = new JsonSerializerOptions(MeshJson.Options) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Set aside {Kind} {Key} read from the {Source} store: {Reason}. Everything else is applied; fix or delete that object")]
    private partial void LogRejected(string kind, string key, string source, string reason);
}
