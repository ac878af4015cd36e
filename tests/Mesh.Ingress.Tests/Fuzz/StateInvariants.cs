using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>
/// What every object read back from the daemon must satisfy, whatever request put it there. Two kinds of check:
/// the project's own validation (each object re-submitted through <see cref="StateTransitions"/> against the rest of
/// the state must be accepted: whatever got in must be what the API would let in), and independent checks that do
/// not trust that code (no control characters in any string that reaches rules, addresses parse and sit in their
/// subnet, ports in range, names unique).
/// </summary>
internal static class StateInvariants
{
    public static List<string> Check(ClusterState state)
    {
        var problems = new List<string>();
        Revalidate(state, problems);
        Independent(state, problems);
        return problems;
    }

    private static void Revalidate(ClusterState state, List<string> problems)
    {
        void Try(string what, Action transition)
        {
            try
            {
                transition();
            }
            catch (Exception e) when (e is ValidationException or ConflictException or NotFoundException)
            {
                problems.Add($"{what} would not be accepted again by StateTransitions: {e.GetType().Name}: {e.Message}");
            }
        }

        foreach (var network in state.Networks)
        {
            Try($"network '{network.Name}'", () => StateTransitions.CreateNetwork(
                state with { Networks = state.Networks.Where(n => n != network).ToArray() },
                new NetworkSpec { Name = network.Name, Subnet = network.Subnet, Vni = network.Vni }));
        }

        foreach (var node in state.Nodes)
        {
            Try($"node '{node.Name}'", () => StateTransitions.RegisterNode(
                state with { Nodes = state.Nodes.Where(n => n != node).ToArray() },
                new NodeSpec { Name = node.Name, AdvertiseAddress = node.AdvertiseAddress }));
        }

        foreach (var service in state.Services)
        {
            Try($"service '{service.Name}'", () => StateTransitions.CreateService(
                state with { Services = state.Services.Where(s => s != service).ToArray() },
                new ServiceSpec { Name = service.Name, Mode = service.Mode, Ports = service.Ports, Networks = service.Networks, Aliases = service.Aliases }));
        }

        foreach (var task in state.Tasks)
        {
            Try($"task '{task.Name}'", () => StateTransitions.AddTask(
                state with { Tasks = state.Tasks.Where(t => t != task).ToArray() },
                new TaskSpec
                {
                    Name = task.Name, Service = task.Service, Node = task.Node, Addresses = task.Addresses,
                    NetnsPath = task.NetnsPath, ResolvConfPath = task.ResolvConfPath, Aliases = task.Aliases,
                }));
        }
    }

    private static void Independent(ClusterState state, List<string> problems)
    {
        var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        void Name(string owner, string name, bool dotted)
        {
            if (!(dotted ? name.Length <= 253 && name.Split('.').All(Validate.IsLabel) : Validate.IsLabel(name)))
            {
                problems.Add($"{owner}: '{FuzzRequest.Show(name, 80)}' is not a DNS name");
            }
        }

        void Dns(string owner, string name, bool shareable)
        {
            if (names.TryGetValue(name, out var other) && !(shareable && other.StartsWith("alias of task", StringComparison.Ordinal)))
            {
                problems.Add($"{owner}: name '{name}' is also {other}");
            }

            names.TryAdd(name, owner);
        }

        var subnets = new Dictionary<string, Cidr>(StringComparer.OrdinalIgnoreCase);
        var used = new Dictionary<(string, uint), string>();
        void Address(string owner, string network, string? ip)
        {
            if (!subnets.TryGetValue(network, out var subnet))
            {
                problems.Add($"{owner}: network '{network}' does not exist");
                return;
            }

            if (ip is null || !IPAddress.TryParse(ip, out var a) || a.AddressFamily != AddressFamily.InterNetwork || a.ToString() != ip)
            {
                problems.Add($"{owner}: '{FuzzRequest.Show(ip ?? "null", 80)}' is not a canonical IPv4 address");
                return;
            }

            var value = Cidr.ToUInt32(a);
            if (!subnet.Contains(a) || value == subnet.Network || value == subnet.Broadcast)
            {
                problems.Add($"{owner}: {ip} is not a host address of {subnet}");
            }

            if (!used.TryAdd((network.ToLowerInvariant(), value), owner))
            {
                problems.Add($"{owner}: {ip} on '{network}' is also used by {used[(network.ToLowerInvariant(), value)]}");
            }
        }

        if (!state.Networks.Any(n => n == OverlayNetwork.Ingress))
        {
            problems.Add("the ingress network is missing or changed");
        }

        foreach (var n in state.Networks)
        {
            Name($"network '{n.Name}'", n.Name, dotted: false);
            if (!Cidr.TryParse(n.Subnet, out var subnet))
            {
                problems.Add($"network '{n.Name}': subnet '{FuzzRequest.Show(n.Subnet, 80)}' does not parse");
            }
            else if (subnets.Values.Any(o => (subnet.Network & o.Mask) == o.Network || (o.Network & subnet.Mask) == subnet.Network) || !subnets.TryAdd(n.Name, subnet))
            {
                problems.Add($"network '{n.Name}': duplicate name or overlapping subnet {subnet}");
            }

            if (n.Vni is < 1 or > 16_777_215 || state.Networks.Count(o => o.Vni == n.Vni) > 1)
            {
                problems.Add($"network '{n.Name}': VNI {n.Vni} out of range or not unique");
            }
        }

        foreach (var node in state.Nodes)
        {
            Name($"node '{node.Name}'", node.Name, dotted: false);
            if (!IPAddress.TryParse(node.AdvertiseAddress, out var a) || a.AddressFamily != AddressFamily.InterNetwork || a.ToString() != node.AdvertiseAddress)
            {
                problems.Add($"node '{node.Name}': advertise address '{FuzzRequest.Show(node.AdvertiseAddress, 80)}' is not canonical IPv4");
            }

            Address($"node '{node.Name}'", OverlayNetwork.IngressName, node.IngressSandboxIp);
            if (state.Nodes.Count(o => string.Equals(o.Name, node.Name, StringComparison.OrdinalIgnoreCase)) > 1)
            {
                problems.Add($"node '{node.Name}' is listed twice");
            }
        }

        var marks = new HashSet<int>();
        var ports = new HashSet<(int, TransportProtocol)>();
        foreach (var s in state.Services)
        {
            var owner = $"service '{s.Name}'";
            Name(owner, s.Name, dotted: false);
            Dns(owner, s.Name, shareable: false);
            foreach (var alias in s.Aliases)
            {
                Name(owner, alias, dotted: true);
                Dns($"alias of service '{s.Name}'", alias, shareable: false);
            }

            if (!Enum.IsDefined(s.Mode) || s.FirewallMark < StateTransitions.FirstFirewallMark || !marks.Add(s.FirewallMark))
            {
                problems.Add($"{owner}: bad mode {s.Mode} or mark {s.FirewallMark} out of range or not unique");
            }

            foreach (var p in s.Ports)
            {
                if (p.Published is < 1 or > 65535 || p.Target is < 1 or > 65535 || !Enum.IsDefined(p.Protocol) || !ports.Add((p.Published, p.Protocol)))
                {
                    problems.Add($"{owner}: port {p.Published}:{p.Target}/{p.Protocol} out of range or published twice");
                }
            }

            var attached = StateTransitions.AttachedNetworks(s).ToList();
            if (s.Networks.Any(n => string.Equals(n, OverlayNetwork.IngressName, StringComparison.OrdinalIgnoreCase))
                || s.Networks.Distinct(StringComparer.OrdinalIgnoreCase).Count() != s.Networks.Count)
            {
                problems.Add($"{owner}: networks [{string.Join(',', s.Networks)}] list ingress or a network twice");
            }

            if (s.Mode == ServiceMode.Vip ? !attached.Order().SequenceEqual(s.Vips.Keys.Order()) : s.Vips.Count != 0)
            {
                problems.Add($"{owner}: VIPs on [{string.Join(',', s.Vips.Keys)}] but attached to [{string.Join(',', attached)}]");
            }

            foreach (var (net, vip) in s.Vips)
            {
                Address($"VIP of {owner}", net, vip);
            }
        }

        foreach (var t in state.Tasks)
        {
            var owner = $"task '{t.Name}'";
            Name(owner, t.Name, dotted: true);
            Dns(owner, t.Name, shareable: false);
            foreach (var alias in t.Aliases)
            {
                Name(owner, alias, dotted: true);
                Dns($"alias of task '{t.Name}'", alias, shareable: true);
            }

            var service = state.Services.FirstOrDefault(s => s.Name == t.Service);
            if (service is null || !state.Nodes.Any(n => n.Name == t.Node) || !Enum.IsDefined(t.State))
            {
                problems.Add($"{owner}: service '{t.Service}' or node '{t.Node}' does not exist (or state {t.State} unknown)");
                continue;
            }

            if (!StateTransitions.AttachedNetworks(service).Order().SequenceEqual(t.Addresses.Keys.Order()))
            {
                problems.Add($"{owner}: addresses on [{string.Join(',', t.Addresses.Keys)}] but its service is on [{string.Join(',', StateTransitions.AttachedNetworks(service))}]");
            }

            foreach (var (net, ip) in t.Addresses)
            {
                Address(owner, net, ip);
            }

            Path(owner + " netnsPath", t.NetnsPath, problems);
            Path(owner + " resolvConfPath", t.ResolvConfPath, problems);
        }

        Strings(state, problems);
    }

    /// <summary>A path the node will open: absolute, bounded, no parent segments, nothing a rule or a log line could be split on.</summary>
    private static void Path(string owner, string? path, List<string> problems)
    {
        if (path is null)
        {
            return;
        }

        if (!path.StartsWith('/') || path.Length > 4096 || path.Split('/').Contains("..", StringComparer.Ordinal))
        {
            problems.Add($"{owner}: '{FuzzRequest.Show(path, 120)}' is not an absolute path without '..'");
        }
    }

    /// <summary>Every string of the state, whatever field it is in: no control characters, no unpaired surrogates.</summary>
    private static void Strings(ClusterState state, List<string> problems)
    {
        var json = System.Text.Json.JsonSerializer.SerializeToNode(state, MeshJson.Options)!;
        void Walk(System.Text.Json.Nodes.JsonNode? node, string where)
        {
            switch (node)
            {
                case System.Text.Json.Nodes.JsonObject o:
                    foreach (var (k, v) in o)
                    {
                        Check(k, where + "." + k);
                        Walk(v, where + "." + k);
                    }

                    break;
                case System.Text.Json.Nodes.JsonArray a:
                    for (var i = 0; i < a.Count; i++)
                    {
                        Walk(a[i], string.Create(CultureInfo.InvariantCulture, $"{where}[{i}]"));
                    }

                    break;
                case System.Text.Json.Nodes.JsonValue v when v.TryGetValue<string>(out var s):
                    Check(s, where);
                    break;
            }
        }

        void Check(string s, string where)
        {
            for (var i = 0; i < s.Length; i++)
            {
                var c = s[i];
                var unpaired = char.IsHighSurrogate(c) ? i + 1 >= s.Length || !char.IsLowSurrogate(s[++i]) : char.IsLowSurrogate(c);
                if (char.IsControl(c) || unpaired || c is '\u2028' or '\u2029')
                {
                    problems.Add($"state{where}: '{FuzzRequest.Show(s, 120)}' holds a control character or an unpaired surrogate");
                    return;
                }
            }
        }

        Walk(json, "");
    }
}
