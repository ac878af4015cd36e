using System.Globalization;

namespace Mesh.Ingress.Lab;

/// <summary>The lab's address plan (ARCHITECTURE.md): names and addresses every test and doc relies on.</summary>
public sealed record LabPlan(int Nodes, int Replicas, string Dataplane, string Store = "embedded", int EtcdMembers = 1, int LeaseTtlSeconds = 10, string Runtime = LabPlan.NetnsRuntime)
{
    public bool UsesEtcd => Store == "etcd";

    /// <summary>Tasks as bare namespaces running <c>mesh lab serve</c>, attached by the lab itself: fast, no podman needed.</summary>
    public const string NetnsRuntime = "netns";

    /// <summary>Tasks as podman containers of <c>localhost/mesh-task</c>, attached by <c>mesh-cni</c> (Lab/Podman).</summary>
    public const string PodmanRuntime = "podman";

    public bool UsesPodman => Runtime == PodmanRuntime;

    public static string EtcdName(int k) => string.Create(CultureInfo.InvariantCulture, $"mesh-etcd{k}");

    public static string EtcdAddress(int k) => string.Create(CultureInfo.InvariantCulture, $"{UnderlayPrefix}.{20 + k}");

    public string EtcdEndpoints => "etcd://" + string.Join(',', Enumerable.Range(1, EtcdMembers).Select(k => $"{EtcdAddress(k)}:2379"));

    public const string Underlay = "mesh-lan";
    public const string UnderlayPrefix = "198.18.0";
    public const string Client = "mesh-client";
    public const string ClientAddress = "198.18.0.100";
    public const string IngressBridge = "mesh-ov-ingress";
    public const string AppNetwork = "appnet";
    public const string AppSubnet = "10.0.1.0/24";
    public const int AppVni = 4097;
    public const int OverlayMtu = 1450;
    public const int StorePort = 2377;
    public const string DemoService = "web";

    /// <summary>Another name of <see cref="DemoService"/> (a service alias: resolves to its VIP).</summary>
    public const string DemoAlias = "frontend";

    /// <summary>An alias every task of <see cref="DnsrrService"/> carries (a shared task alias: resolves to all of them).</summary>
    public const string DnsrrTaskAlias = "backend";

    /// <summary>The second demo service: DNS round robin (no VIP) on appnet, not published.</summary>
    public const string DnsrrService = "api";
    public const int DnsrrReplicas = 2;
    public const int DemoPublished = 8080;
    public const int DemoTarget = 80;

    /// <summary>The demo service's HTTP route through every node's L7 entry (<c>--route web.test/=80</c>).</summary>
    public const string DemoHost = "web.test";
    public const string StateDirectory = "/run/mesh/lab";

    /// <summary>The lab's stand-in for the site's DNS: dnsmasq on the underlay, the daemons' upstream.</summary>
    public const string Upstream = "mesh-upstream";
    public const string UpstreamAddress = "198.18.0.53";

    /// <summary>A domain the upstream serves, to see forwarding work.</summary>
    public const string UpstreamDomain = "upstream.test";

    /// <summary><c>ip netns exec NAME</c> bind-mounts this over /etc/resolv.conf: how lab tasks get the embedded DNS.</summary>
    public static string ResolvConfOf(string netns) => $"/etc/netns/{netns}/resolv.conf";

    public static string NodeName(int i) => string.Create(CultureInfo.InvariantCulture, $"mesh-n{i}");

    public static string NodeAddress(int i) => string.Create(CultureInfo.InvariantCulture, $"{UnderlayPrefix}.{10 + i}");

    /// <summary>The bridge of an overlay in a node namespace (the daemon makes it: <see cref="Overlay.OverlayNames"/>).</summary>
    public static string OverlayBridge(string network) => Overlay.OverlayNames.Bridge(network, IngressBridge);

    public static string OverlayVxlan(int vni) => Overlay.OverlayNames.Vxlan(vni);

    public static string SandboxName(int i) => NodeName(i) + "-ingress";

    public static string TaskNamespace(string task) => "mesh-" + task;

    public static string ApiSocket(string node) => $"{StateDirectory}/{node}.sock";

    public static string Api(string node) => "unix://" + ApiSocket(node);

    /// <summary>The store holder's TCP API: mutual TLS with the lab's CA.</summary>
    public static string StoreUrl => string.Create(CultureInfo.InvariantCulture, $"https://{NodeAddress(1)}:{StorePort}");

    /// <summary>The lab's cluster CA (what <c>mesh ca init</c> makes) and one certificate per node and etcd member.</summary>
    public const string CaDirectory = StateDirectory + "/ca";

    public static string CaCertificate => Discovery.Security.CertificateAuthority.CertificatePath(CaDirectory);

    public static string CertificateOf(string name) => $"{CaDirectory}/{name}.crt";

    public static string KeyOf(string name) => $"{CaDirectory}/{name}.key";

    /// <summary>Every node's <c>--certs-dir</c> (the HTTPS entry's host certificates; empty until a test puts one in).</summary>
    public const string CertsDirectory = StateDirectory + "/certs";

    /// <summary>The daemon options that make a node use its certificate (TCP API, --join).</summary>
    public static IReadOnlyList<string> TlsArguments(string node) => ["--tls-cert", CertificateOf(node), "--tls-key", KeyOf(node), "--tls-ca", CaCertificate];

    /// <summary>
    /// Replicas go round robin over nodes 1..N-1, so the last node runs no task and every request to it
    /// crosses the overlay: the property the routing mesh exists for.
    /// </summary>
    public int NodeOfReplica(int replica) => Nodes == 1 ? 1 : ((replica - 1) % (Nodes - 1)) + 1;

    public string StateFile => $"{StateDirectory}/lab.json";
}
