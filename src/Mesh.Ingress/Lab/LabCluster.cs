using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mesh.Discovery.Model;
using Mesh.Discovery.Security;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Lab;

/// <summary>
/// A whole cluster on one machine, in network namespaces, standing in for the container runtime: underlay
/// bridge, one namespace per node, task namespaces running <c>mesh lab serve</c> with a leg on each of their
/// overlays' bridges, one <c>mesh daemon</c> per node (which makes the overlays), and the demo service registered
/// through the API as a runtime would.
/// Nothing here touches the machine's own network namespace.
/// </summary>
/// <param name="patience">Multiplies every wait and request timeout of the lab: 1 on a real kernel; more in an
/// emulated one (qemu under TCG starts a .NET process ~10× slower, see tests/kernel/README.md).</param>
public sealed partial class LabCluster(ICommandRunner runner, TextWriter output, double patience = 1)
{
    private readonly LinkTool _links = new(runner);

    /// <summary>The node-side end of a lab task's leg on a network (the task's own end is <c>eth</c>N).</summary>
    internal static string HostLeg(string taskName, string network) =>
        "vt" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{taskName}/{network}")).AsSpan(0, 4));

    public async Task UpAsync(LabPlan plan, CancellationToken ct)
    {
        RequireRoot();
        Directory.CreateDirectory(LabPlan.StateDirectory);
        var existing = ReadState();
        var wanted = new LabState
        {
            Nodes = plan.Nodes,
            Replicas = plan.Replicas,
            Dataplane = plan.Dataplane,
            Store = plan.Store,
            EtcdMembers = plan.EtcdMembers,
            LeaseTtlSeconds = plan.LeaseTtlSeconds,
            Runtime = plan.Runtime,
        };
        if (existing is not null && existing with { Created = wanted.Created } != wanted)
        {
            throw new InvalidOperationException(
                $"a lab with {existing.Nodes} nodes, {existing.Replicas} replicas, dataplane {existing.Dataplane}, store {existing.Store} and runtime {existing.Runtime} already exists; run 'mesh lab down' first");
        }

        if (plan.UsesPodman)
        {
            // Refused before anything is made: without podman or a static busybox there is no task to run.
            Podman.LabPodman.RequireInstalled();
            Podman.TaskImage.RequireStaticBusybox(Podman.TaskImage.DefaultBusybox);
        }

        await File.WriteAllTextAsync(plan.StateFile, JsonSerializer.Serialize(existing ?? wanted, MeshJson.Options), ct);
        output.WriteLine(existing is null ? $"Building a {plan.Nodes}-node lab (dataplane {plan.Dataplane}{(plan.UsesPodman ? ", tasks in podman containers" : "")})" : "Lab exists: converging it");
        if (plan.UsesPodman)
        {
            await EnsureTaskImageAsync(ct);
        }

        await BuildUnderlayAsync(plan, ct);
        for (var i = 1; i <= plan.Nodes; i++)
        {
            // Bridged overlay frames must not go through the node's own iptables (Docker keeps them in a separate
            // namespace). The overlays themselves are the daemons' (src/Mesh.Ingress/Overlay).
            await runner.RunInAsync(NetworkNamespacePath.Named(LabPlan.NodeName(i)), "sysctl", ["-q", "-w", "net.bridge.bridge-nf-call-iptables=0"], null, ct);
        }

        await StartUpstreamDnsAsync(ct);
        EnsureCertificates(plan);
        if (plan.UsesEtcd)
        {
            await StartEtcdAsync(plan, ct);
        }

        // Every process of the lab starts at once and is waited for afterwards: the task servers (which need no
        // daemon) and the daemons (a joining one retries until the store holder answers). Their starts are mostly the
        // runtime's JIT, so one after the other left a core idle: in qemu under TCG a 2-node lab's starts took 300 s
        // one by one (tests/kernel/README.md, "Timings").
        var tasks = PlannedTasks(plan);
        if (!plan.UsesPodman)
        {
            foreach (var (taskName, nodeIndex) in tasks)
            {
                await StartTaskServerAsync(taskName, nodeIndex, ct);
            }
        }

        var starting = new List<int>();
        for (var i = 1; i <= plan.Nodes; i++)
        {
            if (!await DaemonAnswersAsync(LabPlan.NodeName(i), ct))
            {
                StartDaemon(plan, i);
                starting.Add(i);
            }
        }

        foreach (var i in starting)
        {
            var node = LabPlan.NodeName(i);
            await WaitUntilAsync(() => DaemonAnswersAsync(node, ct), TimeSpan.FromSeconds(30), $"the daemon of {node} did not start: see {LabPlan.StateDirectory}/{node}.log and {node}.out", ct);
        }

        var store = ApiClientFactory.Store(LabPlan.Api(LabPlan.NodeName(1)));
        await WaitForNodesAsync(store, plan.Nodes, ct);
        var state = await store.GetStateAsync(ct);
        if (StateTransitions.FindNetwork(state, LabPlan.AppNetwork) is null)
        {
            await store.CreateNetworkAsync(new NetworkSpec { Name = LabPlan.AppNetwork, Subnet = LabPlan.AppSubnet, Vni = LabPlan.AppVni }, ct);
        }

        if (!state.Services.Any(s => s.Name == LabPlan.DemoService))
        {
            await store.CreateServiceAsync(new ServiceSpec
            {
                Name = LabPlan.DemoService,
                // The task image answers HTTP only (busybox httpd): with podman, web publishes no UDP port nobody would answer.
                Ports = plan.UsesPodman
                    ? [new(LabPlan.DemoPublished, LabPlan.DemoTarget, TransportProtocol.Tcp)]
                    : [new(LabPlan.DemoPublished, LabPlan.DemoTarget, TransportProtocol.Tcp), new(LabPlan.DemoPublished, LabPlan.DemoTarget, TransportProtocol.Udp)],
                Networks = [LabPlan.AppNetwork],
                Aliases = [LabPlan.DemoAlias],
                Routes = [new(LabPlan.DemoHost, "/", LabPlan.DemoTarget)],
            }, ct);
        }

        if (!state.Services.Any(s => s.Name == LabPlan.DnsrrService))
        {
            await store.CreateServiceAsync(new ServiceSpec { Name = LabPlan.DnsrrService, Mode = ServiceMode.Dnsrr, Networks = [LabPlan.AppNetwork] }, ct);
        }

        if (plan.UsesPodman)
        {
            output.WriteLine(PodmanLimits);
        }

        foreach (var (taskName, nodeIndex) in tasks)
        {
            await StartTaskAsync(store, taskName, nodeIndex, ct);
        }

        await WaitConvergedAsync(plan, ct);
        output.WriteLine($"Lab up: curl from the client with  ip netns exec {LabPlan.Client} curl http://{LabPlan.NodeAddress(plan.Nodes)}:{LabPlan.DemoPublished}/");
    }

    /// <summary>
    /// Adds a task of its service on node <paramref name="nodeIndex"/> the way a runtime would: a namespace, the
    /// task's server (answering before the task is registered), registration (which allocates its addresses), and
    /// one leg per overlay (eth0, eth1, … in the order the service joins them).
    /// </summary>
    public async Task<ServiceTask> StartTaskAsync(IClusterStore store, string taskName, int nodeIndex, CancellationToken ct)
    {
        if (ReadState()?.Runtime == LabPlan.PodmanRuntime)
        {
            return await StartContainerAsync(store, taskName, nodeIndex, ct);
        }

        var node = LabPlan.NodeName(nodeIndex);
        var netns = LabPlan.TaskNamespace(taskName);
        var taskNs = NetworkNamespacePath.Named(netns);
        // The server listens before the task is registered: the moment the mesh routes to it, it answers. It binds
        // the wildcard address, so the overlay legs added below need no restart; a cold start can take seconds.
        await StartTaskServerAsync(taskName, nodeIndex, ct);
        await WaitUntilAsync(async () =>
            (await runner.RunAsync("ip", ["netns", "exec", netns, "curl", "-sf", "-m", "2", $"http://127.0.0.1:{LabPlan.DemoTarget}/"], null, ct)).ExitCode == 0,
            TimeSpan.FromSeconds(60), $"the server of {taskName} does not answer in {netns}: see {LabPlan.StateDirectory}/{taskName}.log", ct);

        var state = await store.GetStateAsync(ct);
        var task = state.Tasks.FirstOrDefault(t => t.Name == taskName)
            ?? await store.AddTaskAsync(new TaskSpec
            {
                Name = taskName,
                Service = taskName.Split('.')[0],
                Node = node,
                NetnsPath = taskNs.Path,
                ResolvConfPath = LabPlan.ResolvConfOf(netns),
                Aliases = taskName.StartsWith(LabPlan.DnsrrService + ".", StringComparison.Ordinal) ? [LabPlan.DnsrrTaskAlias] : [],
            }, ct);
        state = await store.GetStateAsync(ct);

        var nodeNs = NetworkNamespacePath.Named(node);
        var mtu = LabPlan.OverlayMtu.ToString(CultureInfo.InvariantCulture);
        var service = state.Services.Single(s => s.Name == task.Service);
        foreach (var (network, index) in StateTransitions.AttachedNetworks(service).Select((n, i) => (n, i)))
        {
            // The node's daemon makes the network's bridge once it sees a task of its node on it: this one.
            var bridge = LabPlan.OverlayBridge(network);
            await WaitUntilAsync(() => _links.LinkExistsAsync(nodeNs, bridge, ct), TimeSpan.FromSeconds(30),
                $"the daemon of {node} did not make the bridge {bridge} of network {network}: see {LabPlan.StateDirectory}/{node}.log", ct);
            var inside = string.Create(CultureInfo.InvariantCulture, $"eth{index}");
            var hostSide = HostLeg(taskName, network);
            if (!await _links.LinkExistsAsync(nodeNs, hostSide, ct))
            {
                await _links.TryIpAsync(taskNs, ["link", "del", inside], ct);
                // The MAC follows the address, as Docker's overlay does (02:42 + the IPv4 bytes): a task that comes
                // back with the same address is reachable at once, whatever neighbours and VXLAN FDBs have learned.
                // The daemons' static FDB and neighbour entries for the task say this MAC.
                var mac = Overlay.OverlayNames.Mac(task.Addresses[network]);
                await _links.IpAsync(nodeNs, ["link", "add", hostSide, "mtu", mtu, "type", "veth", "peer", "name", inside, "address", mac, "mtu", mtu, "netns", netns], ct);
            }

            await _links.IpAsync(nodeNs, ["link", "set", hostSide, "master", bridge, "up"], ct);
            var prefix = Validate.Cidr("subnet", StateTransitions.FindNetwork(state, network)!.Subnet).PrefixLength.ToString(CultureInfo.InvariantCulture);
            await _links.IpAsync(taskNs, ["addr", "replace", $"{task.Addresses[network]}/{prefix}", "dev", inside], ct);
            await _links.IpAsync(taskNs, ["link", "set", inside, "up"], ct);
        }

        return task;
    }

    /// <summary>The tasks <c>lab up</c> registers, in order: the demo service's replicas, then the DNS round-robin service's.</summary>
    private static List<(string Name, int Node)> PlannedTasks(LabPlan plan) =>
    [
        .. Enumerable.Range(1, plan.Replicas).Select(r => ($"{LabPlan.DemoService}.{r}", plan.NodeOfReplica(r))),
        .. Enumerable.Range(1, LabPlan.DnsrrReplicas).Select(r => ($"{LabPlan.DnsrrService}.{r}", plan.NodeOfReplica(r + 1))),
    ];

    /// <summary>Makes a task's namespace and starts its server there unless one runs already; does not wait for it to answer.</summary>
    private async Task StartTaskServerAsync(string taskName, int nodeIndex, CancellationToken ct)
    {
        var netns = LabPlan.TaskNamespace(taskName);
        await _links.EnsureNamespaceAsync(netns, ct);
        await _links.IpAsync(NetworkNamespacePath.Named(netns), ["link", "set", "lo", "up"], ct);
        if ((await PidsAsync(netns, ct)).Count == 0)
        {
            MeshExecutable.StartDetachedIn(netns, ["lab", "serve", "--task", taskName, "--node", LabPlan.NodeName(nodeIndex), "--port", LabPlan.DemoTarget.ToString(CultureInfo.InvariantCulture)],
                $"{LabPlan.StateDirectory}/{taskName}.log");
        }
    }

    public async Task DownAsync(CancellationToken ct)
    {
        RequireRoot();
        // Containers first, while the daemons still answer their CNI DEL; then nothing of podman's is left to unmount.
        await RemoveContainersAsync(ct);
        var namespaces = (await LabNamespacesAsync(ct)).ToList();
        // Daemons first, so nothing rebuilds what is being removed.
        foreach (var ns in namespaces.OrderBy(n => NodeNamespace().IsMatch(n) ? 0 : 1))
        {
            await KillAllInAsync(ns, ct);
        }

        foreach (var ns in namespaces.OrderBy(n => n == LabPlan.Underlay ? 1 : 0))
        {
            await runner.RunAsync("ip", ["netns", "del", ns], null, ct);
        }

        if (Directory.Exists(LabPlan.StateDirectory))
        {
            Directory.Delete(LabPlan.StateDirectory, recursive: true);
        }

        // The task resolv.conf files the daemons wrote for `ip netns exec` to mount.
        if (Directory.Exists("/etc/netns"))
        {
            foreach (var dir in Directory.GetDirectories("/etc/netns").Where(d => IsLabNamespace(Path.GetFileName(d))))
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        output.WriteLine(namespaces.Count == 0 ? "No lab here: nothing to remove" : $"Lab down: removed {namespaces.Count} namespaces and everything in them");
    }

    public async Task<int> StatusAsync(bool json, CancellationToken ct)
    {
        var lab = ReadState();
        if (lab is null)
        {
            output.WriteLine("No lab is running (start one with 'mesh lab up').");
            return 1;
        }

        var infos = new List<(string Node, string Address, NodeInfo? Info)>();
        for (var i = 1; i <= lab.Nodes; i++)
        {
            var node = LabPlan.NodeName(i);
            NodeInfo? info = null;
            try
            {
                using var http = ApiClientFactory.Create(LabPlan.Api(node), TimeSpan.FromSeconds(3 * patience));
                info = await ServiceCommands.ApiGet<NodeInfo>(http, "v1/info", ct);
            }
            catch (Exception e) when (e is StoreUnavailableException or HttpRequestException or TaskCanceledException or NotFoundException)
            {
                // shown as "down"
            }

            infos.Add((node, LabPlan.NodeAddress(i), info));
        }

        ClusterState? state = null;
        try
        {
            state = await ApiClientFactory.Store(LabPlan.Api(LabPlan.NodeName(1))).GetStateAsync(ct);
        }
        catch (StoreUnavailableException)
        {
            // the holder is down: show what we can
        }

        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new { lab, nodes = infos.Select(x => new { name = x.Node, address = x.Address, info = x.Info }), state }, MeshJson.Options));
            return 0;
        }

        output.WriteLine($"Lab: {lab.Nodes} nodes, {lab.Replicas} replicas, runtime {lab.Runtime}, store {lab.Store}{(lab.Store == "etcd" ? $" ({lab.EtcdMembers} members, lease TTL {lab.LeaseTtlSeconds} s)" : "")}, created {lab.Created:u}");
        output.WriteLine();
        TableWriter.Write(output, ["NODE", "ADDRESS", "DAEMON", "DATAPLANE", "STORE", "APPLIED REV", "LAST ERROR"], infos.Select(x => (IReadOnlyList<string>)
        [
            x.Node, x.Address, x.Info is null ? "down" : "up", x.Info?.Dataplane ?? "-", x.Info?.Store ?? "-",
            x.Info?.AppliedRevision.ToString(CultureInfo.InvariantCulture) ?? "-", x.Info?.LastError ?? "",
        ]));
        if (state is not null)
        {
            output.WriteLine();
            TableWriter.Write(output, ["SERVICE", "MODE", "PORTS", "VIPS", "TASKS", "ALIASES"], state.Services.Select(s => (IReadOnlyList<string>)
            [
                s.Name, s.Mode.ToString().ToLowerInvariant(), string.Join(',', s.Ports), string.Join(',', s.Vips.Select(v => $"{v.Key}={v.Value}")),
                state.Tasks.Count(t => t.Service == s.Name).ToString(CultureInfo.InvariantCulture), string.Join(',', s.Aliases),
            ]));
            output.WriteLine();
            TableWriter.Write(output, ["TASK", "SERVICE", "NODE", "STATE", "ADDRESSES", "NETNS", "ALIASES"], state.Tasks.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => (IReadOnlyList<string>)
            [
                t.Name, t.Service, t.Node, System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(t.State.ToString()),
                string.Join(',', t.Addresses.Select(a => $"{a.Key}={a.Value}")), t.NetnsPath ?? "-", string.Join(',', t.Aliases),
            ]));
        }

        return infos.All(x => x.Info is not null) ? 0 : 1;
    }

    private async Task BuildUnderlayAsync(LabPlan plan, CancellationToken ct)
    {
        var lan = NetworkNamespacePath.Named(LabPlan.Underlay);
        await _links.EnsureNamespaceAsync(LabPlan.Underlay, ct);
        if (!await _links.LinkExistsAsync(lan, LabPlan.Underlay, ct))
        {
            await _links.IpAsync(lan, ["link", "add", LabPlan.Underlay, "type", "bridge"], ct);
        }

        await _links.IpAsync(lan, ["link", "set", LabPlan.Underlay, "up"], ct);
        var hosts = Enumerable.Range(1, plan.Nodes).Select(i => (Ns: LabPlan.NodeName(i), Port: $"n{i}", Address: LabPlan.NodeAddress(i)))
            .Append((Ns: LabPlan.Client, Port: "client", Address: LabPlan.ClientAddress))
            .Append((Ns: LabPlan.Upstream, Port: "upstream", Address: LabPlan.UpstreamAddress))
            .Concat(Enumerable.Range(1, plan.UsesEtcd ? plan.EtcdMembers : 0).Select(k => (Ns: LabPlan.EtcdName(k), Port: $"etcd{k}", Address: LabPlan.EtcdAddress(k))));
        foreach (var (ns, port, address) in hosts)
        {
            await _links.EnsureNamespaceAsync(ns, ct);
            var host = NetworkNamespacePath.Named(ns);
            if (!await _links.LinkExistsAsync(lan, port, ct))
            {
                await _links.TryIpAsync(host, ["link", "del", "eth0"], ct);
                await _links.IpAsync(lan, ["link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns], ct);
            }

            await _links.IpAsync(lan, ["link", "set", port, "master", LabPlan.Underlay, "up"], ct);
            await _links.IpAsync(host, ["addr", "replace", $"{address}/24", "dev", "eth0"], ct);
            await _links.IpAsync(host, ["link", "set", "eth0", "up"], ct);
            await _links.IpAsync(host, ["link", "set", "lo", "up"], ct);
        }
    }

    /// <summary>Starts node <paramref name="i"/>'s daemon in its namespace; does not wait for it to answer.</summary>
    private static void StartDaemon(LabPlan plan, int i)
    {
        var node = LabPlan.NodeName(i);
        List<string> args =
        [
            "daemon", "--node", node, "--advertise-addr", LabPlan.NodeAddress(i), "--dataplane", plan.Dataplane,
            "--api", LabPlan.Api(node), "--log-file", $"{LabPlan.StateDirectory}/{node}.log",
            "--ingress-sandbox", LabPlan.SandboxName(i), "--ingress-bridge", LabPlan.IngressBridge,
            "--dns-upstream", LabPlan.UpstreamAddress, "--certs-dir", LabPlan.CertsDirectory,
        ];
        Directory.CreateDirectory(LabPlan.CertsDirectory);
        if (plan.UsesEtcd)
        {
            args.AddRange(["--store", plan.EtcdEndpoints, "--lease-ttl", plan.LeaseTtlSeconds.ToString(CultureInfo.InvariantCulture),
                "--etcd-cert", LabPlan.CertificateOf(node), "--etcd-key", LabPlan.KeyOf(node), "--etcd-ca", LabPlan.CaCertificate]);
        }
        else if (i == 1)
        {
            // The store holder's TCP API, which the others join: mutual TLS with the lab's CA.
            args.AddRange(["--api", $"tcp://{LabPlan.NodeAddress(1)}:{LabPlan.StorePort}", "--state-dir", $"{LabPlan.StateDirectory}/store", .. LabPlan.TlsArguments(node)]);
        }
        else
        {
            args.AddRange(["--join", LabPlan.StoreUrl, .. LabPlan.TlsArguments(node)]);
        }

        // What the daemon prints before its log file is open (a crash at start, the runtime's own errors) goes to .out.
        MeshExecutable.StartDetachedIn(node, args, $"{LabPlan.StateDirectory}/{node}.out");
    }

    /// <summary>
    /// What an operator does with <c>mesh ca init</c> and <c>mesh ca issue</c>: the lab's CA, and a certificate per node
    /// and per etcd member naming its underlay address. Kept across <c>lab up</c> runs (a converging lab reuses them).
    /// </summary>
    private void EnsureCertificates(LabPlan plan)
    {
        if (!File.Exists(LabPlan.CaCertificate))
        {
            using var created = CertificateAuthority.Create("mesh lab CA", TimeSpan.FromDays(365));
            created.Save(LabPlan.CaDirectory);
            output.WriteLine($"Cluster CA: {LabPlan.CaCertificate}");
        }

        using var ca = CertificateAuthority.Load(LabPlan.CaDirectory);
        var holders = Enumerable.Range(1, plan.Nodes).Select(i => (Name: LabPlan.NodeName(i), Address: LabPlan.NodeAddress(i)))
            .Concat(Enumerable.Range(1, plan.UsesEtcd ? plan.EtcdMembers : 0).Select(k => (Name: LabPlan.EtcdName(k), Address: LabPlan.EtcdAddress(k))));
        foreach (var (name, address) in holders.Where(h => !File.Exists(LabPlan.CertificateOf(h.Name))))
        {
            ca.Issue(name, [System.Net.IPAddress.Parse(address)], [], TimeSpan.FromDays(365)).Save(LabPlan.CertificateOf(name), LabPlan.KeyOf(name));
        }
    }

    private async Task<bool> DaemonAnswersAsync(string node, CancellationToken ct)
    {
        if (!File.Exists(LabPlan.ApiSocket(node)))
        {
            return false;
        }

        try
        {
            using var http = ApiClientFactory.Create(LabPlan.Api(node), TimeSpan.FromSeconds(2 * patience));
            using var response = await http.GetAsync(new Uri("v1/info", UriKind.Relative), ct);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private async Task WaitForNodesAsync(IClusterStore store, int count, CancellationToken ct) =>
        await WaitUntilAsync(async () => (await store.GetStateAsync(ct)).Nodes.Count >= count, TimeSpan.FromSeconds(30), "not every node registered with the store", ct);

    /// <summary>Every daemon has applied the latest revision and every node's published port reaches every task of the demo service.</summary>
    private async Task WaitConvergedAsync(LabPlan plan, CancellationToken ct)
    {
        var state = await ApiClientFactory.Store(LabPlan.Api(LabPlan.NodeName(1))).GetStateAsync(ct);
        var revision = state.Revision;
        var tasks = state.Tasks.Where(t => t.Service == LabPlan.DemoService && t.State == TaskState.Running).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        for (var i = 1; i <= plan.Nodes; i++)
        {
            var node = LabPlan.NodeName(i);
            await WaitUntilAsync(async () =>
            {
                using var http = ApiClientFactory.Create(LabPlan.Api(node), TimeSpan.FromSeconds(3 * patience));
                var info = await ServiceCommands.ApiGet<NodeInfo>(http, "v1/info", ct);
                return info.AppliedRevision >= revision;
            }, TimeSpan.FromSeconds(60), $"{node} did not apply revision {revision}: see {LabPlan.StateDirectory}/{node}.log", ct);
        }

        for (var i = 1; i <= plan.Nodes; i++)
        {
            var url = $"http://{LabPlan.NodeAddress(i)}:{LabPlan.DemoPublished}/";
            var answered = new HashSet<string>(StringComparer.Ordinal);
            await WaitUntilAsync(async () =>
            {
                // New connections, so the backend choice runs for each; the first word of an answer names its task.
                string[] curl = ["netns", "exec", LabPlan.Client, "curl", "-s", "-m", "2", "-H", "Connection: close", .. Enumerable.Repeat(url, 4 * tasks.Count)];
                var result = await runner.RunAsync("ip", curl, null, ct);
                answered.UnionWith(result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]));
                return tasks.IsSubsetOf(answered);
            }, TimeSpan.FromSeconds(30), () => $"{url} from {LabPlan.Client} never reached {string.Join(", ", tasks.Except(answered).Order(StringComparer.Ordinal))}", ct);
        }
    }

    private Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string failure, CancellationToken ct) =>
        WaitUntilAsync(condition, timeout, () => failure, ct);

    /// <param name="failure">The error, told when the time is up (so it can say what was seen by then).</param>
    private async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> failure, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * patience * Stopwatch.Frequency);
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is StoreUnavailableException or HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                // not yet
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new InvalidOperationException(failure());
            }

            await Task.Delay(100, ct);
        }
    }

    private async Task<IReadOnlyList<string>> LabNamespacesAsync(CancellationToken ct)
    {
        var list = await runner.RunCheckedAsync("ip", ["netns", "list"], null, ct);
        return list.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')[0])
            .Where(IsLabNamespace)
            .ToList();
    }

    private static bool IsLabNamespace(string name) =>
        name is LabPlan.Underlay or LabPlan.Client or LabPlan.Upstream || NodeNamespace().IsMatch(name) || TaskNamespace().IsMatch(name) || EtcdNamespace().IsMatch(name);

    /// <summary>A real etcd (Debian's etcd-server) on the underlay: one member, or a cluster of three.</summary>
    private async Task StartEtcdAsync(LabPlan plan, CancellationToken ct)
    {
        const string etcd = "/usr/bin/etcd";
        if (!File.Exists(etcd))
        {
            throw new InvalidOperationException("--store etcd needs etcd: apt-get install etcd-server");
        }

        var cluster = string.Join(',', Enumerable.Range(1, plan.EtcdMembers).Select(k => $"m{k}=http://{LabPlan.EtcdAddress(k)}:2380"));
        for (var k = 1; k <= plan.EtcdMembers; k++)
        {
            if ((await PidsAsync(LabPlan.EtcdName(k), ct)).Count > 0)
            {
                continue;
            }

            var address = LabPlan.EtcdAddress(k);
            MeshExecutable.StartDetachedIn(LabPlan.EtcdName(k), etcd,
            [
                "--name", $"m{k}", "--data-dir", $"{LabPlan.StateDirectory}/etcd{k}",
                "--listen-client-urls", $"https://{address}:2379", "--advertise-client-urls", $"https://{address}:2379",
                // Clients (the daemons) need a certificate of the lab's CA. The member's own certificate carries client auth
                // too, which etcd's JSON gateway needs: it dials the member with it.
                "--cert-file", LabPlan.CertificateOf(LabPlan.EtcdName(k)), "--key-file", LabPlan.KeyOf(LabPlan.EtcdName(k)),
                "--trusted-ca-file", LabPlan.CaCertificate, "--client-cert-auth",
                "--listen-peer-urls", $"http://{address}:2380", "--initial-advertise-peer-urls", $"http://{address}:2380",
                "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "mesh-lab",
            ], $"{LabPlan.StateDirectory}/etcd{k}.log");
        }

        await WaitUntilAsync(async () =>
            (await runner.RunAsync("ip",
            [
                "netns", "exec", LabPlan.Client, "curl", "-sf", "-m", "2", "--cacert", LabPlan.CaCertificate,
                "--cert", LabPlan.CertificateOf(LabPlan.NodeName(1)), "--key", LabPlan.KeyOf(LabPlan.NodeName(1)), $"https://{LabPlan.EtcdAddress(1)}:2379/health",
            ], null, ct)).Stdout.Contains("true", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), $"etcd did not become healthy: see {LabPlan.StateDirectory}/etcd1.log", ct);
    }

    /// <summary>
    /// dnsmasq on the underlay as the site's resolver: it serves <c>upstream.test</c> (with a TXT record too big
    /// for 512-byte UDP, to exercise truncation) and refuses the rest. Skipped, with a note, without dnsmasq.
    /// </summary>
    private async Task StartUpstreamDnsAsync(CancellationToken ct)
    {
        const string dnsmasq = "/usr/sbin/dnsmasq";
        if (!File.Exists(dnsmasq))
        {
            output.WriteLine("note: dnsmasq is not installed, so the lab has no upstream DNS (apt-get install dnsmasq-base)");
            return;
        }

        if ((await PidsAsync(LabPlan.Upstream, ct)).Count > 0)
        {
            return;
        }

        var big = string.Join(',', Enumerable.Range(0, 4).Select(i => new string((char)('a' + i), 200)));
        MeshExecutable.StartDetachedIn(LabPlan.Upstream, dnsmasq,
        [
            "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root", "--pid-file",
            $"--listen-address={LabPlan.UpstreamAddress}", $"--local=/{LabPlan.UpstreamDomain}/",
            $"--address=/www.{LabPlan.UpstreamDomain}/198.18.0.200", $"--txt-record=big.{LabPlan.UpstreamDomain},{big}",
        ]);
    }

    private async Task<IReadOnlyList<int>> PidsAsync(string netns, CancellationToken ct)
    {
        var result = await runner.RunAsync("ip", ["netns", "pids", netns], null, ct);
        return result.ExitCode != 0 ? [] : result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToList();
    }

    private async Task KillAllInAsync(string netns, CancellationToken ct)
    {
        var pids = await PidsAsync(netns, ct);
        foreach (var pid in pids)
        {
            await SignalAsync(pid, "TERM", ct);
        }

        for (var wait = 0; wait < 30 && (await PidsAsync(netns, ct)).Count > 0; wait++)
        {
            await Task.Delay(100, ct);
        }

        foreach (var pid in await PidsAsync(netns, ct))
        {
            await SignalAsync(pid, "KILL", ct);
        }
    }

    private Task SignalAsync(int pid, string signal, CancellationToken ct) =>
        runner.RunAsync("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)], null, ct);

    private static LabState? ReadState()
    {
        var path = $"{LabPlan.StateDirectory}/lab.json";
        return File.Exists(path) ? JsonSerializer.Deserialize<LabState>(File.ReadAllText(path), MeshJson.Options) : null;
    }

    private static void RequireRoot()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException("the lab creates network namespaces: run it as root");
        }
    }

    [GeneratedRegex(@"^mesh-etcd\d+$")]
    private static partial Regex EtcdNamespace();

    [GeneratedRegex(@"^mesh-n\d+(-ingress)?$")]
    private static partial Regex NodeNamespace();

    [GeneratedRegex(@"^mesh-[a-z0-9-]+\.[0-9]+$", RegexOptions.IgnoreCase)]
    private static partial Regex TaskNamespace();
}
