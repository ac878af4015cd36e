namespace Mesh.Discovery.Model;

/// <summary>
/// What a stored object must satisfy, field by field, wherever it comes from: the store transitions check every
/// object they produce with these, and every object read back from etcd, from the store holder over HTTP or from the
/// state file is checked again before anything can paste it into an iptables or nft ruleset (values there are not
/// ours to trust: anyone with access to etcd can write them). Each rule is O(size of the object); a failure names the field.
/// </summary>
public static class ObjectRules
{
    public static void Network(OverlayNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        Validate.Label("name", network.Name);
        var subnet = Validate.Cidr("subnet", network.Subnet);
        if (subnet.PrefixLength is < 8 or > 29)
        {
            throw new ValidationException("subnet", $"{subnet} must be between /8 and /29");
        }

        if (network.Vni is < 1 or > 16_777_215)
        {
            throw new ValidationException("vni", $"{network.Vni} is not a VXLAN network identifier (1-16777215)");
        }
    }

    public static void Node(ClusterNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        Validate.Label("name", node.Name);
        CanonicalIPv4("advertiseAddress", node.AdvertiseAddress);
        HostAddress("ingressSandboxIp", node.IngressSandboxIp, OverlayNetwork.Ingress);
    }

    public static void Service(ClusterService service, ReservedPorts reserved)
    {
        ArgumentNullException.ThrowIfNull(service);
        Validate.Label("name", service.Name);
        if (!Enum.IsDefined(service.Mode))
        {
            throw new ValidationException("mode", "must be vip or dnsrr");
        }

        Ports(service.Ports, reserved);
        if (!Routes(service.Routes).SequenceEqual(service.Routes))
        {
            throw new ValidationException("routes", "a route is not in its normal form (lower-case host, prefix without a trailing '/')");
        }

        if (HealthCheck(service.HealthCheck, service.Ports, service.Routes) != service.HealthCheck)
        {
            throw new ValidationException("healthCheck", "is not in its normal form");
        }

        BalancingRules.Check(service.LoadBalancing, service.Affinity, service.Ports, service.Routes);
        BackendProtocols.Check(service.BackendProtocol, service.Routes);
        Networks(service.Networks);
        Aliases(service.Aliases, service.Name);
        if (service.FirewallMark is < 0x100 or > Limits.MaxFirewallMark)
        {
            throw new ValidationException("firewallMark", $"{service.FirewallMark} is outside 0x100-0x{Limits.MaxFirewallMark:x}");
        }

        if (service.Vips.Count > Limits.MaxNetworksPerService + 1)
        {
            throw new ValidationException("vips", $"{service.Vips.Count} VIPs are more than {Limits.MaxNetworksPerService + 1}");
        }

        foreach (var (net, vip) in service.Vips)
        {
            Validate.Label("vips", net);
            CanonicalIPv4($"vips.{net}", vip);
        }
    }

    public static void Task(ServiceTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        Validate.DottedName("name", task.Name);
        Validate.Label("service", task.Service);
        Validate.Label("node", task.Node);
        Aliases(task.Aliases, task.Name);
        if (task.Addresses.Count > Limits.MaxNetworksPerService + 1)
        {
            throw new ValidationException("addresses", $"{task.Addresses.Count} addresses are more than {Limits.MaxNetworksPerService + 1}");
        }

        foreach (var (net, ip) in task.Addresses)
        {
            Validate.Label("addresses", net);
            CanonicalIPv4($"addresses.{net}", ip);
        }

        Path("netnsPath", task.NetnsPath);
        Path("resolvConfPath", task.ResolvConfPath);
        if (task.ContainerId is not null)
        {
            Validate.ContainerId("containerId", task.ContainerId);
        }

        if (!Enum.IsDefined(task.State))
        {
            throw new ValidationException("state", "is not running, draining, node_down, starting or failed");
        }
    }

    /// <summary>Ports of a service: the count cap first (constant time), then each port, duplicates by hash set.</summary>
    public static void Ports(IReadOnlyList<PublishedPort?> ports, ReservedPorts reserved)
    {
        ArgumentNullException.ThrowIfNull(ports);
        ArgumentNullException.ThrowIfNull(reserved);
        if (ports.Count > Limits.MaxPortsPerService)
        {
            throw new ValidationException("ports", $"{ports.Count} ports are more than the {Limits.MaxPortsPerService} a service may publish");
        }

        var seen = new HashSet<(int, TransportProtocol)>();
        for (var i = 0; i < ports.Count; i++)
        {
            var port = ports[i] ?? throw new ValidationException($"ports[{i}]", "is null");
            Validate.Port($"ports[{i}].published", port.Published);
            Validate.Port($"ports[{i}].target", port.Target);
            if (!Enum.IsDefined(port.Protocol))
            {
                throw new ValidationException($"ports[{i}].protocol", "must be tcp or udp");
            }

            if (!Enum.IsDefined(port.Mode) || !Enum.IsDefined(port.Traffic) || !Enum.IsDefined(port.Proxy))
            {
                throw new ValidationException($"ports[{i}]", $"mode must be ingress or host, traffic cluster or local, proxy none or v2");
            }

            if (port.OptionsConflict() is { } conflict)
            {
                throw new ValidationException($"ports[{i}]", conflict);
            }

            if (reserved.Reason(port.Published, port.Protocol) is { } why)
            {
                throw new ValidationException($"ports[{i}].published", $"{port.Published}/{port.Protocol.ToString().ToLowerInvariant()} is reserved for {why} on every node");
            }

            if (!seen.Add((port.Published, port.Protocol)))
            {
                throw new ValidationException($"ports[{i}]", $"{port} is listed twice");
            }
        }
    }

    /// <summary>
    /// A service's health check, checked field by field (errors name the API's field, <c>healthCheck.intervalMs</c>);
    /// the service must have a TCP target to probe (<see cref="Model.HealthCheck.ProbePort"/>).
    /// </summary>
    public static HealthCheck? HealthCheck(HealthCheck? check, IReadOnlyList<PublishedPort?> ports, IReadOnlyList<ServiceRoute> routes)
    {
        if (check is null)
        {
            return null;
        }

        var normal = Model.HealthCheck.Normalize(check, field => "healthCheck." + field);
        if (Model.HealthCheck.ProbePort(ports.OfType<PublishedPort>().ToList(), routes) is null)
        {
            throw new ValidationException("healthCheck", "the service has no TCP target to probe: publish a tcp port or add a route");
        }

        return normal;
    }

    /// <summary>
    /// HTTP routes of a service: the count cap first, then each route checked and normalized (as
    /// <see cref="ServiceRoute.Normalize"/> does; a stored route must already be in that form), none twice.
    /// </summary>
    public static ServiceRoute[] Routes(IReadOnlyList<ServiceRoute?>? routes)
    {
        routes ??= [];
        if (routes.Count > Limits.MaxRoutesPerService)
        {
            throw new ValidationException("routes", $"{routes.Count} routes are more than the {Limits.MaxRoutesPerService} a service may have");
        }

        var seen = new HashSet<(string, string)>();
        var result = new ServiceRoute[routes.Count];
        for (var i = 0; i < routes.Count; i++)
        {
            var route = routes[i] ?? throw new ValidationException($"routes[{i}]", "is null");
            var normal = ServiceRoute.Normalize($"routes[{i}]", route.Host, route.PathPrefix, route.Target);
            if (!seen.Add(normal.Identity()))
            {
                throw new ValidationException($"routes[{i}]", $"{normal.Host}{normal.PathPrefix} is listed twice");
            }

            result[i] = normal;
        }

        return result;
    }

    /// <summary>A service's own networks: labels, not ingress (joined automatically), none twice.</summary>
    public static void Networks(IReadOnlyList<string> networks)
    {
        ArgumentNullException.ThrowIfNull(networks);
        if (networks.Count > Limits.MaxNetworksPerService)
        {
            throw new ValidationException("networks", $"{networks.Count} networks are more than the {Limits.MaxNetworksPerService} a service may join");
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < networks.Count; i++)
        {
            Validate.Label($"networks[{i}]", networks[i]);
            if (string.Equals(networks[i], OverlayNetwork.IngressName, StringComparison.OrdinalIgnoreCase))
            {
                throw new ValidationException($"networks[{i}]", "'ingress' is joined automatically when ports are published");
            }

            if (!seen.Add(networks[i]))
            {
                throw new ValidationException($"networks[{i}]", $"'{networks[i]}' is listed twice");
            }
        }
    }

    /// <summary>Aliases: the count cap first, then DNS names, none twice (hash set), none the object's own name, none under <c>tasks.</c>.</summary>
    public static string[] Aliases(IReadOnlyList<string>? aliases, string? self)
    {
        aliases ??= [];
        if (aliases.Count > Limits.MaxAliasesPerObject)
        {
            throw new ValidationException("aliases", $"{aliases.Count} aliases are more than the {Limits.MaxAliasesPerObject} an object may have");
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < aliases.Count; i++)
        {
            var alias = Validate.DottedName($"aliases[{i}]", aliases[i]);
            if (alias.StartsWith("tasks.", StringComparison.OrdinalIgnoreCase) || string.Equals(alias, "tasks", StringComparison.OrdinalIgnoreCase))
            {
                throw new ValidationException($"aliases[{i}]", "'tasks' and names under 'tasks.' are reserved for task lists");
            }

            if (self is not null && string.Equals(alias, self, StringComparison.OrdinalIgnoreCase))
            {
                throw new ValidationException($"aliases[{i}]", $"'{alias}' is the name itself");
            }

            if (!seen.Add(alias))
            {
                throw new ValidationException($"aliases[{i}]", $"'{alias}' is listed twice");
            }
        }

        return [.. aliases];
    }

    /// <summary>An absolute path with no control characters (a newline in a path is never legitimate).</summary>
    public static void Path(string field, string? path)
    {
        if (path is null)
        {
            return;
        }

        Validate.AbsolutePath(field, path);
        if (path.Length > Limits.MaxPathLength || path.Any(char.IsControl))
        {
            throw new ValidationException(field, $"'{Validate.Printable(path)}' is not an absolute path");
        }
    }

    /// <summary>A stored address: dotted-quad IPv4 exactly as the store writes it (no leading zeros, spaces or suffixes).</summary>
    public static void CanonicalIPv4(string field, string? value)
    {
        var ip = Validate.IPv4(field, value);
        if (ip.ToString() != value)
        {
            throw new ValidationException(field, $"'{Validate.Printable(value)}' is not an IPv4 address in dotted-quad form");
        }
    }

    /// <summary>A usable host address of <paramref name="network"/> (not its network, .1 or broadcast address).</summary>
    public static void HostAddress(string field, string? value, OverlayNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        CanonicalIPv4(field, value);
        var subnet = Validate.Cidr("subnet", network.Subnet);
        var ip = System.Net.IPAddress.Parse(value!);
        var v = Cidr.ToUInt32(ip);
        if (!subnet.Contains(ip) || v == subnet.Network || v == subnet.Broadcast || v == subnet.Network + 1)
        {
            throw new ValidationException(field, $"{value} is not a usable host address of {network.Subnet}");
        }
    }
}
