using Mesh.Ingress.Dataplane;

namespace Mesh.Ingress.Daemon;

public enum DataplaneChoice
{
    Auto,
    Ipvs,
    Nftables,
}

/// <summary>Everything <c>mesh daemon</c> is told on its command line.</summary>
public sealed record DaemonOptions
{
    public required string Node { get; init; }
    public required string AdvertiseAddress { get; init; }

    /// <summary>Where the embedded store keeps its file (the store holder only).</summary>
    public string StateDirectory { get; init; } = "/var/lib/mesh";

    /// <summary>URL of the store holder's API; null means this daemon holds the embedded store (or uses etcd).</summary>
    public Uri? Join { get; init; }

    /// <summary><c>etcd://HOST:PORT[,HOST:PORT…]</c>, or null for the embedded store.</summary>
    public string? Etcd { get; init; }

    /// <summary>With etcd: a node whose daemon has not renewed its lease for this long is taken out of every backend set and DNS answer.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(10);

    public DataplaneChoice Dataplane { get; init; } = DataplaneChoice.Auto;

    /// <summary><c>unix:///run/mesh/mesh.sock</c> (mode 0660) and optionally <c>tcp://IP:PORT</c>.</summary>
    public IReadOnlyList<Uri> ApiEndpoints { get; init; } = [new Uri("unix:///run/mesh/mesh.sock")];

    /// <summary>Credentials of the TCP API and the join client, and the unix socket's group (read and checked at start).</summary>
    public Security.ApiSecurity Security { get; init; } = Mesh.Ingress.Security.ApiSecurity.None;

    /// <summary>With etcd: TLS to the members (<c>--etcd-ca</c>, <c>--etcd-cert/--etcd-key</c>); null is plain http.</summary>
    public Discovery.Security.ClientTls? EtcdTls { get; init; }

    public string? LogFile { get; init; }

    /// <summary>The log file is rotated when it would pass this many bytes (3 old files kept); 0: never rotated.</summary>
    public long LogMaxSize { get; init; } = FileLoggerProvider.DefaultMaxSize;

    /// <summary>An OpenTelemetry collector's OTLP/HTTP base URL (e.g. http://collector:4318) to push metrics and traces to.</summary>
    public Uri? OtlpEndpoint { get; init; }

    /// <summary><c>--l4-metrics-backends</c>: the backends the per-backend L4 series cover at most (0: none).</summary>
    public int L4MetricsBackends { get; init; } = Telemetry.L4.L4BackendMetrics.DefaultMaxBackends;

    /// <summary>A full reconcile runs at least this often even without changes, repairing drift.</summary>
    public TimeSpan ResyncInterval { get; init; } = DefaultResyncInterval;

    /// <summary>kube-proxy's default sync period too (<c>--iptables-sync-period</c>).</summary>
    public static readonly TimeSpan DefaultResyncInterval = TimeSpan.FromSeconds(30);

    /// <summary>The shortest time between the starts of two passes of a loop: changes arriving closer together are
    /// coalesced into one pass, while a change after a quiet spell is applied at once.</summary>
    public TimeSpan MinSyncInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    public NodeNetworkOptions Network { get; init; } = new();

    /// <summary>The L7 entry: <c>--http-port</c>, <c>--trusted-proxies</c>.</summary>
    public Http.HttpEntryOptions Http { get; init; } = new();
    /// <summary><c>--health-port</c>: per-service local task counts on the advertise address (0: no listener).</summary>
    public int HealthPort { get; init; } = Health.HealthPort.DefaultPort;

    /// <summary>Settings of the ipvs dataplane (timeouts, drain period); unused by nftables.</summary>
    public IpvsOptions Ipvs { get; init; } = new();

    /// <summary>Where the node's own resolver configuration is (upstreams, search and options for tasks).</summary>
    public string NodeResolvConf { get; init; } = "/etc/resolv.conf";

    /// <summary>The only directories a task's resolv.conf may be written below (<c>--resolv-conf-root</c>, canonical paths).</summary>
    public IReadOnlyList<string> ResolvConfRoots { get; init; } = Mesh.Discovery.Model.TaskPaths.DefaultResolvConfRoots;

    /// <summary>Every child process (ip, iptables-restore, nft, nsenter, sysctl) is killed after this long (<c>--command-timeout</c>).</summary>
    public TimeSpan CommandTimeout { get; init; } = Kernel.ProcessCommandRunner.DefaultTimeout;

    /// <summary>Upstream DNS servers for names the embedded DNS does not own; empty means those of <see cref="NodeResolvConf"/>.</summary>
    public IReadOnlyList<System.Net.IPEndPoint> DnsUpstreams { get; init; } = [];
}
