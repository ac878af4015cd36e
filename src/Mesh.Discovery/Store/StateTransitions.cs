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

        if (state.Networks.Count - 1 >= Limits.MaxNetworks)
        {
            throw new ConflictException($"the cluster has {state.Networks.Count - 1} overlay networks, the most it may have ({Limits.MaxNetworks})");
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
        ObjectRules.Network(network);
        return (state with { Networks = [.. state.Networks, network] }, network);
    }

    public static (ClusterState State, ClusterNode Node) RegisterNode(ClusterState state, NodeSpec spec)
    {
        var name = Validate.Label("name", spec.Name);
        var advertise = Validate.IPv4("advertiseAddress", spec.AdvertiseAddress).ToString();
        ClusterNode? existing = null;
        foreach (var n in state.Nodes)
        {
            if (Same(n.Name, name))
            {
                existing = n;
            }
            else if (n.AdvertiseAddress == advertise)
            {
                // Two nodes on one underlay address would share one VXLAN peer: refuse, and say how to undo a stale one.
                throw new ConflictException($"advertise address {advertise} is already registered by node '{n.Name}' (if that node is gone: mesh node rm {n.Name})");
            }
        }

        if (existing is not null)
        {
            if (existing.AdvertiseAddress == advertise)
            {
                return (state, existing); // a restarted daemon re-registering: nothing changes, no new revision
            }

            var updated = existing with { AdvertiseAddress = advertise };
            return (state with { Nodes = Replace(state.Nodes, existing, updated) }, updated);
        }

        if (state.Nodes.Count >= Limits.MaxNodes)
        {
            throw new ConflictException($"the cluster has {state.Nodes.Count} nodes, the most it may have ({Limits.MaxNodes}): remove a node that is gone with mesh node rm NAME");
        }

        var node = new ClusterNode
        {
            Name = name,
            AdvertiseAddress = advertise,
            IngressSandboxIp = AllocateAddress(state, OverlayNetwork.Ingress),
        };
        ObjectRules.Node(node);
        return (state with { Nodes = [.. state.Nodes, node] }, node);
    }

    /// <summary>
    /// Removes a node that is gone for good, freeing its ingress sandbox address. Refused while tasks still name the
    /// node (remove them first: their addresses and backends would otherwise point at a node nobody runs). A daemon
    /// still running under that name registers again on its next pass.
    /// </summary>
    public static ClusterState RemoveNode(ClusterState state, string name)
    {
        var node = state.Nodes.FirstOrDefault(n => Same(n.Name, name)) ?? throw new NotFoundException($"node '{Validate.Printable(name)}' is not registered");
        var tasks = state.Tasks.Where(t => Same(t.Node, node.Name)).Select(t => t.Name).ToArray();
        if (tasks.Length > 0)
        {
            var some = string.Join(", ", tasks.Take(3)) + (tasks.Length > 3 ? ", ..." : "");
            throw new ConflictException($"node '{node.Name}' still has {tasks.Length} task(s) ({some}): remove them first (mesh task rm)");
        }

        return state with { Nodes = state.Nodes.Where(n => !ReferenceEquals(n, node)).ToArray() };
    }

    public static (ClusterState State, ClusterService Service) CreateService(ClusterState state, ServiceSpec spec, ReservedPorts? reserved = null)
    {
        reserved ??= ReservedPorts.Default;
        var name = Validate.Label("name", spec.Name);
        if (!Enum.IsDefined(spec.Mode))
        {
            throw new ValidationException("mode", "must be vip or dnsrr");
        }

        // Per-request caps are checked before any per-item work, so an oversized request costs constant time.
        var ports = spec.Ports ?? [];
        ObjectRules.Ports(ports, reserved);
        var routes = ObjectRules.Routes(spec.Routes);
        var healthCheck = ObjectRules.HealthCheck(spec.HealthCheck, ports, routes);
        var lb = spec.LoadBalancing ?? LoadBalancing.RoundRobin;
        var affinity = spec.Affinity ?? Affinity.None;
        BalancingRules.Check(lb, affinity, ports, routes);
        var backendProtocol = spec.BackendProtocol ?? BackendProtocol.Http1;
        BackendProtocols.Check(backendProtocol, routes);

        var aliases = ObjectRules.Aliases(spec.Aliases, name);
        var requested = spec.Networks ?? [];
        if (requested.Count > Limits.MaxNetworksPerService)
        {
            throw new ValidationException("networks", $"{requested.Count} networks are more than the {Limits.MaxNetworksPerService} a service may join");
        }

        var networks = new List<string>();
        var joined = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < requested.Count; i++)
        {
            var net = requested[i];
            Validate.Label($"networks[{i}]", net);
            if (Same(net, OverlayNetwork.IngressName))
            {
                throw new ValidationException($"networks[{i}]", "'ingress' is joined automatically when ports are published");
            }

            // Stored as the network is named ("appnet" when "AppNet" was asked): everything after compares exactly.
            var network = FindNetwork(state, net) ?? throw new ValidationException($"networks[{i}]", $"network '{net}' does not exist");
            if (joined.Add(network.Name))
            {
                networks.Add(network.Name);
            }
        }

        if (state.Services.Count >= Limits.MaxServices)
        {
            throw new ConflictException($"the cluster has {state.Services.Count} services, the most it may have ({Limits.MaxServices})");
        }

        var index = new NameIndex(state);
        if (state.Services.Any(s => Same(s.Name, name)))
        {
            throw new ConflictException($"service '{name}' already exists");
        }

        foreach (var taken in aliases.Prepend(name))
        {
            if (index.User(taken) is { } user)
            {
                throw new ConflictException($"name '{taken}' is already used by {user.Owner}");
            }
        }

        var published = PublishedPorts(state);
        foreach (var port in ports)
        {

            if (published.TryGetValue((port!.Published, port.Protocol), out var owner))
            {
                throw new ConflictException($"port {port.Published}/{port.Protocol.ToString().ToLowerInvariant()} is already published by service '{owner}'");
            }
        }

        var routed = RoutedPaths(state);
        foreach (var route in routes)
        {
            if (routed.TryGetValue(route.Identity(), out var owner))
            {
                throw new ConflictException($"route {route.Host}{route.PathPrefix} already goes to service '{owner}'");
            }
        }

        var service = new ClusterService
        {
            Name = name,
            Mode = spec.Mode,
            Ports = [.. ports!],
            Routes = routes,
            HealthCheck = healthCheck,
            LoadBalancing = lb,
            Affinity = affinity,
            BackendProtocol = backendProtocol,
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

        ObjectRules.Service(service, reserved);
        var next = state with { Services = [.. state.Services, service] };
        return (next, service);
    }

    /// <summary>
    /// Changes a service's load-balancing policy and affinity (the fields of <paramref name="update"/> that are set),
    /// checked as a new service's are; unchanged when nothing differs (the revision does not move).
    /// </summary>
    public static (ClusterState State, ClusterService Service) UpdateService(ClusterState state, string name, ServiceUpdate update, ReservedPorts? reserved = null)
    {
        ArgumentNullException.ThrowIfNull(update);
        var service = state.Services.FirstOrDefault(s => Same(s.Name, name))
            ?? throw new NotFoundException($"service '{Validate.Printable(name)}' does not exist");
        var next = service with
        {
            LoadBalancing = update.LoadBalancing ?? service.LoadBalancing,
            Affinity = update.Affinity ?? service.Affinity,
        };
        BalancingRules.Check(next.LoadBalancing, next.Affinity, next.Ports, next.Routes);
        if (next == service)
        {
            return (state, service);
        }

        ObjectRules.Service(next, reserved ?? ReservedPorts.Default);
        return (state with { Services = state.Services.Select(s => ReferenceEquals(s, service) ? next : s).ToArray() }, next);
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

        if (spec.ContainerId is not null)
        {
            Validate.ContainerId("containerId", spec.ContainerId);
        }

        if (spec.State is not (null or TaskState.Running or TaskState.Starting))
        {
            throw new ValidationException("state", $"a new task is starting or running, not {StateName(spec.State.Value)}");
        }

        var aliases = ObjectRules.Aliases(spec.Aliases, spec.Name);
        if (spec.Addresses is { Count: > Limits.MaxNetworksPerService + 1 } many)
        {
            throw new ValidationException("addresses", $"{many.Count} addresses are more than a task can have ({Limits.MaxNetworksPerService + 1})");
        }

        if (state.Tasks.Count >= Limits.MaxTasks)
        {
            throw new ConflictException($"the cluster has {state.Tasks.Count} tasks, the most it may have ({Limits.MaxTasks})");
        }

        var service = state.Services.FirstOrDefault(s => Same(s.Name, serviceName))
            ?? throw new NotFoundException($"service '{serviceName}' does not exist");
        // The task names the node as it registered ("TCP", not "tcp"): daemons pick their tasks by exact name.
        var node = state.Nodes.FirstOrDefault(n => Same(n.Name, nodeName))
            ?? throw new NotFoundException($"node '{nodeName}' is not registered (is its daemon running?)");

        var index = new NameIndex(state);
        var name = spec.Name ?? index.NextTaskName(service.Name);
        if (index.IsTask(name))
        {
            throw new ConflictException($"task '{name}' already exists");
        }

        if (index.User(name) is { } nameUser)
        {
            throw new ConflictException($"name '{name}' is already used by {nameUser.Owner}");
        }

        if (spec.ContainerId is { } containerId && state.Tasks.FirstOrDefault(t => t.ContainerId == containerId) is { } holder)
        {
            throw new ConflictException($"container '{containerId}' is already task '{holder.Name}'");
        }

        foreach (var alias in aliases)
        {
            // Tasks may share an alias (it then answers all of them); nothing else may share a name.
            if (index.User(alias) is { IsTaskAlias: false } user)
            {
                throw new ConflictException($"name '{alias}' is already used by {user.Owner}");
            }
        }

        var wanted = AttachedNetworks(service).ToList();
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        var used = new Dictionary<string, HashSet<uint>>(StringComparer.OrdinalIgnoreCase);
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

            if (!used.TryGetValue(network.Name, out var taken))
            {
                used[network.Name] = taken = UsedAddresses(state, network.Name);
            }

            if (taken.Contains(value))
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
            Name = name, Service = service.Name, Node = node.Name, NetnsPath = spec.NetnsPath, ResolvConfPath = spec.ResolvConfPath, Addresses = addresses, Aliases = aliases,
            ContainerId = spec.ContainerId,
            // A service with no TCP target has no port to wait for: nothing to probe, so routable at once.
            State = spec.State == TaskState.Starting && HealthCheck.ProbePort(service.Ports, service.Routes) is not null ? TaskState.Starting : TaskState.Running,
        };
        ObjectRules.Task(task);
        return (state with { Tasks = [.. state.Tasks, task] }, task);
    }

    /// <summary>
    /// Who answers to which DNS name, and which task names exist, built once per request in O(state): every
    /// duplicate check is then one hash lookup, whatever the number of aliases in the request or in the cluster.
    /// </summary>
    private sealed class NameIndex
    {
        private readonly Dictionary<string, NameUse> _users = new(StringComparer.OrdinalIgnoreCase);
        private readonly HashSet<string> _tasks = new(StringComparer.OrdinalIgnoreCase);

        public NameIndex(ClusterState state)
        {
            // Same precedence as before: service names, then service aliases, then task names, then task aliases.
            foreach (var s in state.Services)
            {
                _users.TryAdd(s.Name, new($"service '{s.Name}'", false));
            }

            foreach (var s in state.Services)
            {
                foreach (var a in s.Aliases)
                {
                    _users.TryAdd(a, new($"an alias of service '{s.Name}'", false));
                }
            }

            foreach (var t in state.Tasks)
            {
                _tasks.Add(t.Name);
                _users.TryAdd(t.Name, new($"task '{t.Name}'", false));
            }

            foreach (var t in state.Tasks)
            {
                foreach (var a in t.Aliases)
                {
                    _users.TryAdd(a, new($"an alias of task '{t.Name}'", true));
                }
            }
        }

        /// <summary>Who already answers to <paramref name="name"/> in DNS; null when nobody.</summary>
        public NameUse? User(string name) => _users.GetValueOrDefault(name);

        public bool IsTask(string name) => _tasks.Contains(name);

        public string NextTaskName(string service)
        {
            for (var slot = 1; ; slot++)
            {
                var candidate = $"{service}.{slot}";
                if (!_tasks.Contains(candidate))
                {
                    return candidate;
                }
            }
        }
    }

    private sealed record NameUse(string Owner, bool IsTaskAlias);

    private static Dictionary<(int, TransportProtocol), string> PublishedPorts(ClusterState state)
    {
        var published = new Dictionary<(int, TransportProtocol), string>();
        foreach (var s in state.Services)
        {
            foreach (var p in s.Ports)
            {
                published.TryAdd((p.Published, p.Protocol), s.Name);
            }
        }

        return published;
    }

    private static Dictionary<(string, string), string> RoutedPaths(ClusterState state)
    {
        var routed = new Dictionary<(string, string), string>();
        foreach (var s in state.Services)
        {
            foreach (var r in s.Routes)
            {
                routed.TryAdd(r.Identity(), s.Name);
            }
        }

        return routed;
    }

    public static ClusterState RemoveTask(ClusterState state, string name)
    {
        var task = state.Tasks.FirstOrDefault(t => Same(t.Name, name)) ?? throw new NotFoundException($"task '{name}' does not exist");
        return state with { Tasks = state.Tasks.Where(t => t != task).ToArray() };
    }

    /// <summary>
    /// A starting task's outcome, reported by its node's daemon: <see cref="TaskState.Running"/> (its port answered) or
    /// <see cref="TaskState.Failed"/> (it did not in time). Only a starting task moves; asking again for the state it
    /// is in changes nothing (the revision stays), so a daemon that reports twice after a lost answer is not refused.
    /// </summary>
    public static (ClusterState State, ServiceTask Task) SetTaskState(ClusterState state, string name, TaskUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (update.State is not ({ } wanted and (TaskState.Running or TaskState.Failed)))
        {
            throw new ValidationException("state", update.State is { } other ? $"a task can be made running or failed, not {StateName(other)}" : "is required (running or failed)");
        }

        var task = state.Tasks.FirstOrDefault(t => Same(t.Name, name)) ?? throw new NotFoundException($"task '{Validate.Printable(name)}' does not exist");
        if (task.State == wanted)
        {
            return (state, task);
        }

        if (task.State != TaskState.Starting)
        {
            throw new ConflictException($"task '{task.Name}' is {StateName(task.State)}, not starting: only a starting task becomes {StateName(wanted)}");
        }

        var next = task with { State = wanted };
        return (state with { Tasks = state.Tasks.Select(t => ReferenceEquals(t, task) ? next : t).ToArray() }, next);
    }

    /// <summary>A state as the API and the CLI spell it.</summary>
    public static string StateName(TaskState state) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(state.ToString());

    /// <summary>The overlays a service's tasks sit on: ingress when it publishes ports or has HTTP routes (the L7 entry
    /// reaches tasks from the ingress sandbox), then its own networks.</summary>
    public static IEnumerable<string> AttachedNetworks(ClusterService service)
    {
        if (service.Ports.Count > 0 || service.Routes.Count > 0)
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
