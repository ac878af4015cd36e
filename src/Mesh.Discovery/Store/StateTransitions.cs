using Mesh.Discovery.Model;

namespace Mesh.Discovery.Store;

/// <summary>
/// Pure functions from (state, request) to the next state. Validation and allocation live here so
/// every store implementation behaves the same; a throw means nothing changes.
/// </summary>
public static class StateTransitions
{
    public const int FirstFirewallMark = 0x100;

    public static (ClusterState State, OverlayNetwork Network) CreateNetwork(ClusterState state, NetworkSpec spec)
    {
        var name = Validate.Label("name", spec.Name);
        var subnet = Validate.Cidr("subnet", spec.Subnet);
        if (subnet.PrefixLength is < 8 or > 29)
        {
            throw new ValidationException("subnet", $"{subnet} must be between /8 and /29");
        }

        if (spec.Vni is < 1 or > 16_777_215)
        {
            throw new ValidationException("vni", $"{spec.Vni} is not a VXLAN network identifier (1-16777215)");
        }

        if (FindNetwork(state, name) is not null)
        {
            throw new ConflictException($"network '{name}' already exists");
        }

        foreach (var other in state.Networks)
        {
            var o = Validate.Cidr("subnet", other.Subnet);
            if ((subnet.Network & o.Mask) == o.Network || (o.Network & subnet.Mask) == subnet.Network)
            {
                throw new ConflictException($"subnet {subnet} overlaps network '{other.Name}' ({other.Subnet})");
            }

            if (other.Vni == spec.Vni)
            {
                throw new ConflictException($"VNI {spec.Vni} is already used by network '{other.Name}'");
            }
        }

        var network = new OverlayNetwork(name, subnet.ToString(), spec.Vni);
        return (state with { Networks = [.. state.Networks, network] }, network);
    }

    public static (ClusterState State, ClusterNode Node) RegisterNode(ClusterState state, NodeSpec spec)
    {
        var name = Validate.Label("name", spec.Name);
        var advertise = Validate.IPv4("advertiseAddress", spec.AdvertiseAddress).ToString();
        var existing = state.Nodes.FirstOrDefault(n => Same(n.Name, name));
        if (existing is not null)
        {
            if (existing.AdvertiseAddress == advertise)
            {
                return (state, existing); // a restarted daemon re-registering: nothing changes, no new revision
            }

            var updated = existing with { AdvertiseAddress = advertise };
            return (state with { Nodes = Replace(state.Nodes, existing, updated) }, updated);
        }

        var node = new ClusterNode
        {
            Name = name,
            AdvertiseAddress = advertise,
            IngressSandboxIp = AllocateAddress(state, OverlayNetwork.Ingress),
        };
        return (state with { Nodes = [.. state.Nodes, node] }, node);
    }

    public static (ClusterState State, ClusterService Service) CreateService(ClusterState state, ServiceSpec spec)
    {
        var name = Validate.Label("name", spec.Name);
        if (!Enum.IsDefined(spec.Mode))
        {
            throw new ValidationException("mode", "must be vip or dnsrr");
        }

        var ports = spec.Ports ?? [];
        for (var i = 0; i < ports.Count; i++)
        {
            var port = ports[i] ?? throw new ValidationException($"ports[{i}]", "is null");
            Validate.Port($"ports[{i}].published", port.Published);
            Validate.Port($"ports[{i}].target", port.Target);
            if (!Enum.IsDefined(port.Protocol))
            {
                throw new ValidationException($"ports[{i}].protocol", "must be tcp or udp");
            }

            if (ports.Take(i).Any(p => p.Published == port.Published && p.Protocol == port.Protocol))
            {
                throw new ValidationException($"ports[{i}]", $"{port} is listed twice");
            }
        }

        var aliases = Aliases(spec.Aliases, except: name);
        var networks = new List<string>();
        foreach (var (net, i) in (spec.Networks ?? []).Select((n, i) => (n, i)))
        {
            Validate.Label($"networks[{i}]", net);
            if (Same(net, OverlayNetwork.IngressName))
            {
                throw new ValidationException($"networks[{i}]", "'ingress' is joined automatically when ports are published");
            }

            if (FindNetwork(state, net) is null)
            {
                throw new ValidationException($"networks[{i}]", $"network '{net}' does not exist");
            }

            if (!networks.Contains(net, StringComparer.OrdinalIgnoreCase))
            {
                networks.Add(net);
            }
        }

        if (state.Services.Any(s => Same(s.Name, name)))
        {
            throw new ConflictException($"service '{name}' already exists");
        }

        foreach (var taken in aliases.Prepend(name))
        {
            if (NameUser(state, taken) is { } user)
            {
                throw new ConflictException($"name '{taken}' is already used by {user.Owner}");
            }
        }

        foreach (var port in ports)
        {
            var owner = state.Services.FirstOrDefault(s => s.Ports.Any(p => p.Published == port.Published && p.Protocol == port.Protocol));
            if (owner is not null)
            {
                throw new ConflictException($"port {port.Published}/{port.Protocol.ToString().ToLowerInvariant()} is already published by service '{owner.Name}'");
            }
        }

        var service = new ClusterService
        {
            Name = name,
            Mode = spec.Mode,
            Ports = [.. ports],
            Networks = networks,
            Aliases = aliases,
            FirewallMark = AllocateMark(state),
        };

        if (spec.Mode == ServiceMode.Vip)
        {
            // Each network appears once, so allocating against the current state cannot collide.
            service = service with
            {
                Vips = AttachedNetworks(service).ToDictionary(net => net, net => AllocateAddress(state, FindNetwork(state, net)!), StringComparer.Ordinal),
            };
        }

        var next = state with { Services = [.. state.Services, service] };
        return (next, service);
    }

    public static ClusterState RemoveService(ClusterState state, string name)
    {
        var service = state.Services.FirstOrDefault(s => Same(s.Name, name))
            ?? throw new NotFoundException($"service '{name}' does not exist");
        return state with
        {
            Services = state.Services.Where(s => s != service).ToArray(),
            Tasks = state.Tasks.Where(t => !Same(t.Service, service.Name)).ToArray(),
        };
    }

    public static (ClusterState State, ServiceTask Task) AddTask(ClusterState state, TaskSpec spec)
    {
        var serviceName = Validate.Label("service", spec.Service);
        var nodeName = Validate.Label("node", spec.Node);
        if (spec.Name is not null)
        {
            Validate.DottedName("name", spec.Name);
        }

        if (spec.NetnsPath is not null)
        {
            TaskPaths.NetnsPath("netnsPath", spec.NetnsPath);
        }

        if (spec.ResolvConfPath is not null)
        {
            TaskPaths.ResolvConfPath("resolvConfPath", spec.ResolvConfPath);
        }

        var aliases = Aliases(spec.Aliases, except: spec.Name);

        var service = state.Services.FirstOrDefault(s => Same(s.Name, serviceName))
            ?? throw new NotFoundException($"service '{serviceName}' does not exist");
        if (!state.Nodes.Any(n => Same(n.Name, nodeName)))
        {
            throw new NotFoundException($"node '{nodeName}' is not registered (is its daemon running?)");
        }

        var name = spec.Name ?? NextTaskName(state, service.Name);
        if (state.Tasks.Any(t => Same(t.Name, name)))
        {
            throw new ConflictException($"task '{name}' already exists");
        }

        if (NameUser(state, name) is { } nameUser)
        {
            throw new ConflictException($"name '{name}' is already used by {nameUser.Owner}");
        }

        foreach (var alias in aliases)
        {
            // Tasks may share an alias (it then answers all of them); nothing else may share a name.
            if (NameUser(state, alias) is { IsTaskAlias: false } user)
            {
                throw new ConflictException($"name '{alias}' is already used by {user.Owner}");
            }
        }

        var wanted = AttachedNetworks(service).ToList();
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (net, ip) in spec.Addresses ?? new Dictionary<string, string>())
        {
            var network = FindNetwork(state, net) ?? throw new ValidationException($"addresses.{net}", $"network '{net}' does not exist");
            if (!wanted.Contains(network.Name))
            {
                throw new ValidationException($"addresses.{net}", $"service '{service.Name}' is not attached to network '{network.Name}'");
            }

            var address = Validate.IPv4($"addresses.{net}", ip);
            var subnet = Validate.Cidr("subnet", network.Subnet);
            var value = Cidr.ToUInt32(address);
            if (!subnet.Contains(address) || value == subnet.Network || value == subnet.Broadcast || value == subnet.Network + 1)
            {
                throw new ValidationException($"addresses.{net}", $"{address} is not a usable host address of {network.Subnet}");
            }

            if (UsedAddresses(state, network.Name).Contains(value))
            {
                throw new ConflictException($"address {address} is already in use on network '{network.Name}'");
            }

            addresses[network.Name] = address.ToString();
        }

        foreach (var net in wanted.Where(n => !addresses.ContainsKey(n)))
        {
            addresses[net] = AllocateAddress(state, FindNetwork(state, net)!);
        }

        var task = new ServiceTask
        {
            Name = name, Service = service.Name, Node = nodeName, NetnsPath = spec.NetnsPath, ResolvConfPath = spec.ResolvConfPath, Addresses = addresses, Aliases = aliases,
        };
        return (state with { Tasks = [.. state.Tasks, task] }, task);
    }

    /// <summary>Validated aliases: DNS names, none twice, none the object's own name, none under the reserved <c>tasks.</c>.</summary>
    private static string[] Aliases(IReadOnlyList<string>? aliases, string? except)
    {
        aliases ??= [];
        for (var i = 0; i < aliases.Count; i++)
        {
            var alias = Validate.DottedName($"aliases[{i}]", aliases[i]);
            if (alias.StartsWith("tasks.", StringComparison.OrdinalIgnoreCase) || Same(alias, "tasks"))
            {
                throw new ValidationException($"aliases[{i}]", "'tasks' and names under 'tasks.' are reserved for task lists");
            }

            if (except is not null && Same(alias, except))
            {
                throw new ValidationException($"aliases[{i}]", $"'{alias}' is the name itself");
            }

            if (aliases.Take(i).Any(a => Same(a, alias)))
            {
                throw new ValidationException($"aliases[{i}]", $"'{alias}' is listed twice");
            }
        }

        return [.. aliases];
    }

    /// <summary>Who already answers to <paramref name="name"/> in DNS: a service (name or alias) or a task (name or alias); null when nobody.</summary>
    private static NameUse? NameUser(ClusterState state, string name) =>
        state.Services.FirstOrDefault(s => Same(s.Name, name)) is { } byName ? new($"service '{byName.Name}'", false)
        : state.Services.FirstOrDefault(s => s.Aliases.Any(a => Same(a, name))) is { } byAlias ? new($"an alias of service '{byAlias.Name}'", false)
        : state.Tasks.FirstOrDefault(t => Same(t.Name, name)) is { } task ? new($"task '{task.Name}'", false)
        : state.Tasks.FirstOrDefault(t => t.Aliases.Any(a => Same(a, name))) is { } aliased ? new($"an alias of task '{aliased.Name}'", true)
        : null;

    private sealed record NameUse(string Owner, bool IsTaskAlias);

    public static ClusterState RemoveTask(ClusterState state, string name)
    {
        var task = state.Tasks.FirstOrDefault(t => Same(t.Name, name)) ?? throw new NotFoundException($"task '{name}' does not exist");
        return state with { Tasks = state.Tasks.Where(t => t != task).ToArray() };
    }

    /// <summary>The overlays a service's tasks sit on: ingress when it publishes ports, then its own networks.</summary>
    public static IEnumerable<string> AttachedNetworks(ClusterService service)
    {
        if (service.Ports.Count > 0)
        {
            yield return OverlayNetwork.IngressName;
        }

        foreach (var net in service.Networks)
        {
            yield return net;
        }
    }

    public static OverlayNetwork? FindNetwork(ClusterState state, string name) =>
        state.Networks.FirstOrDefault(n => Same(n.Name, name));

    private static string NextTaskName(ClusterState state, string service)
    {
        for (var slot = 1; ; slot++)
        {
            var candidate = $"{service}.{slot}";
            if (!state.Tasks.Any(t => Same(t.Name, candidate)))
            {
                return candidate;
            }
        }
    }

    private static int AllocateMark(ClusterState state)
    {
        var used = state.Services.Select(s => s.FirewallMark).ToHashSet();
        var mark = FirstFirewallMark;
        while (used.Contains(mark))
        {
            mark++;
        }

        return mark;
    }

    private static HashSet<uint> UsedAddresses(ClusterState state, string network)
    {
        var used = new HashSet<uint>();
        void Add(string? ip)
        {
            if (ip is not null && System.Net.IPAddress.TryParse(ip, out var a))
            {
                used.Add(Cidr.ToUInt32(a));
            }
        }

        if (Same(network, OverlayNetwork.IngressName))
        {
            foreach (var n in state.Nodes)
            {
                Add(n.IngressSandboxIp);
            }
        }

        foreach (var s in state.Services)
        {
            Add(s.Vips.GetValueOrDefault(network));
        }

        foreach (var t in state.Tasks)
        {
            Add(t.Addresses.GetValueOrDefault(network));
        }

        return used;
    }

    /// <summary>Lowest free host address, skipping the network address, .1 (gateway by convention) and broadcast.</summary>
    private static string AllocateAddress(ClusterState state, OverlayNetwork network)
    {
        var subnet = Validate.Cidr("subnet", network.Subnet);
        var used = UsedAddresses(state, network.Name);
        for (var candidate = subnet.Network + 2; candidate < subnet.Broadcast; candidate++)
        {
            if (!used.Contains(candidate))
            {
                return Cidr.ToAddress(candidate).ToString();
            }
        }

        throw new ConflictException($"network '{network.Name}' ({network.Subnet}) has no free addresses");
    }

    private static bool Same(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    private static T[] Replace<T>(IReadOnlyList<T> list, T old, T replacement) where T : class =>
        list.Select(x => ReferenceEquals(x, old) ? replacement : x).ToArray();
}
