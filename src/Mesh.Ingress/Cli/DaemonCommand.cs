using System.CommandLine;
using Mesh.Discovery.Model;
using Mesh.Discovery.Security;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Daemon.Configuration;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Security;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Cli;

public static class DaemonCommand
{
    /// <param name="environment">Where <c>MESH_*</c> variables are read (the process's environment unless a test gives its own).</param>
    /// <param name="run">What runs the daemon with its validated options (a test may stop there).</param>
    public static Command Build(Func<string, string?>? environment = null, Func<DaemonOptions, CancellationToken, Task<int>>? run = null)
    {
        // Required, but from any source (flag, MESH_NODE, the --config file): checked once the sources are layered.
        var node = new Option<string>("--node") { Description = "This node's name (required)" };
        var advertise = new Option<string>("--advertise-addr") { Description = "This node's underlay address (VXLAN peers reach it here; required)" };
        var config = new Option<string?>("--config") { Description = "A JSON file of these options, keys without the dashes ({\"node\": \"host-a\", \"lease-ttl\": 10}); flags, then MESH_* variables (MESH_LEASE_TTL), override it" };
        var store = new Option<string>("--store") { Description = "embedded (default) or etcd://HOST:PORT", DefaultValueFactory = _ => "embedded" };
        var join = new Option<string?>("--join") { Description = "URL of the store holder's API, e.g. https://198.18.0.11:2377 (with --tls-*)" };
        var dataplane = new Option<string>("--dataplane") { Description = "auto (default), ipvs or nftables", DefaultValueFactory = _ => "auto" };
        var api = new Option<string[]>("--api") { Description = "API endpoint: unix:///run/mesh/mesh.sock (default) or tcp://IP:PORT; repeatable" };
        var stateDir = new Option<string>("--state-dir") { Description = "Where the embedded store keeps its state", DefaultValueFactory = _ => "/var/lib/mesh" };
        var logFile = new Option<string?>("--log-file") { Description = "Log to this file instead of the console" };
        var logMaxSize = new Option<string>("--log-max-size") { Description = "Rotate the --log-file when it would pass this size (e.g. 10MiB, 512K; 0: never), keeping 3 old files FILE.1..FILE.3", DefaultValueFactory = _ => "10MiB" };
        var sandbox = new Option<string>("--ingress-sandbox") { Description = "Network namespace name of the ingress sandbox", DefaultValueFactory = _ => new NodeNetworkOptions().IngressSandbox };
        var otlp = new Option<string?>("--otlp-endpoint") { Description = "Push metrics and traces over OTLP/HTTP to this collector, e.g. http://collector:4318" };
        var l4Backends = new Option<int>("--l4-metrics-backends") { Description = "How many backends (service, port, task) the mesh_l4_backend_* series cover at most; beyond it the first by name, with a warning (0: no L4 backend series)", DefaultValueFactory = _ => Telemetry.L4.L4BackendMetrics.DefaultMaxBackends };
        var leaseTtl = new Option<int>("--lease-ttl") { Description = "With etcd: seconds after which a silent node's tasks leave every backend set", DefaultValueFactory = _ => 10 };
        var upstream = new Option<string[]>("--dns-upstream") { Description = "Upstream DNS server IP[:PORT] for names Mesh does not own (repeatable; default: the node's /etc/resolv.conf)" };
        var ipvsTcp = new Option<int?>("--ipvs-tcp-timeout") { Description = "ipvs dataplane: idle timeout of TCP connections in seconds (kernel default 900)" };
        var ipvsTcpFin = new Option<int?>("--ipvs-tcpfin-timeout") { Description = "ipvs dataplane: timeout after FIN in seconds (kernel default 120)" };
        var ipvsUdp = new Option<int?>("--ipvs-udp-timeout") { Description = "ipvs dataplane: UDP timeout in seconds (kernel default 300)" };
        var ipvsDrain = new Option<double>("--ipvs-drain") { Description = "ipvs dataplane: seconds a gone task's real server stays at weight 0 before removal", DefaultValueFactory = _ => new IpvsOptions().DrainPeriod.TotalSeconds };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "This node's certificate (PEM, from mesh ca issue): the TCP API serves it and --join presents it" };
        var tlsKey = new Option<string?>("--tls-key") { Description = "The key of --tls-cert (PEM, mode 0600)" };
        var tlsCa = new Option<string?>("--tls-ca") { Description = "The cluster CA (PEM): TCP API clients and the --join server must chain to it, and to nothing else" };
        var tokenFile = new Option<string?>("--api-token-file") { Description = "A file (mode 0600) holding a bearer token every TCP API request must carry; --join sends it too" };
        var insecure = new Option<bool>("--insecure-api") { Description = "Allow a TCP API without TLS or token (anyone who reaches it controls this node)" };
        var apiGroup = new Option<string?>("--api-group") { Description = "Group owner of the unix socket (mode 0660); default the daemon's group" };
        var etcdCert = new Option<string?>("--etcd-cert") { Description = "With --store etcd: client certificate for etcd's --client-cert-auth (PEM)" };
        var etcdKey = new Option<string?>("--etcd-key") { Description = "With --store etcd: the key of --etcd-cert (PEM, mode 0600)" };
        var etcdCa = new Option<string?>("--etcd-ca") { Description = "With --store etcd: the CA of etcd's server certificates; the members are then reached over https" };
        var bridge = new Option<string>("--ingress-bridge") { Description = "Bridge of the ingress overlay in this namespace", DefaultValueFactory = _ => new NodeNetworkOptions().IngressBridge };

        var resolvConfRoot = new Option<string[]>("--resolv-conf-root") { Description = "A directory below which tasks' resolv.conf files may be written (repeatable; default /etc/netns and /run/mesh/tasks)" };
        var healthPort = new Option<int>("--health-port") { Description = "GET /services/NAME on the advertise address answers 200 with this node's task count, 503 with none (0: off)", DefaultValueFactory = _ => Health.HealthPort.DefaultPort };
        var resync = new Option<int>("--resync-interval") { Description = "Seconds between the resyncs that read the kernel back and repair drift (5-3600); a change is applied at once whatever it is", DefaultValueFactory = _ => (int)DaemonOptions.DefaultResyncInterval.TotalSeconds };
        var commandTimeout = new Option<int>("--command-timeout") { Description = "Seconds after which a child process (ip, nft, iptables-restore, ...) is killed and reported", DefaultValueFactory = _ => (int)ProcessCommandRunner.DefaultTimeout.TotalSeconds };

        var httpPort = new Option<int>("--http-port") { Description = "TCP port of the L7 entry (services' --route) on every address of this node; 0 turns it off", DefaultValueFactory = _ => Http.HttpEntryOptions.DefaultPort };
        var httpsPort = new Option<int>("--https-port") { Description = "TCP port of the HTTPS entry (HTTP/1.1 and HTTP/2, certificates by SNI from --certs-dir); open only with --certs-dir", DefaultValueFactory = _ => Http.HttpEntryOptions.DefaultHttpsPort };
        var certsDir = new Option<string?>("--certs-dir") { Description = "Directory of <host>.crt/<host>.key PEM pairs (*.domain.crt for a wildcard) the HTTPS entry serves by SNI; watched, changes apply without a restart" };
        var trustedProxies = new Option<string[]>("--trusted-proxies") { Description = "Addresses or CIDRs (comma separated, repeatable) whose X-Forwarded-*/Forwarded headers the L7 entry keeps; everyone else's are dropped (default none)" };

        var command = new Command("daemon", "Run the per-node agent") { node, advertise, store, join, dataplane, api, stateDir, logFile, logMaxSize, sandbox, bridge, upstream, ipvsTcp, ipvsTcpFin, ipvsUdp, ipvsDrain, leaseTtl, otlp, l4Backends, tlsCert, tlsKey, tlsCa, tokenFile, insecure, apiGroup, etcdCert, etcdKey, etcdCa, resolvConfRoot, resync, commandTimeout, httpPort, httpsPort, certsDir, trustedProxies, healthPort, config };
        command.SetAction((given, ct) => CliErrors.RunAsync(async () =>
        {
            var settings = DaemonConfiguration.Resolve(given, command, config, [node, advertise], environment ?? Environment.GetEnvironmentVariable);
            var options = settings.Explain(() => ToOptions(settings.Parse));
            return await (run ?? DaemonHost.RunAsync)(options, ct);
        }));
        return command;

        DaemonOptions ToOptions(ParseResult parse)
        {
            var storeText = parse.GetValue(store)!;
            string? etcd = null;
            if (storeText.StartsWith("etcd://", StringComparison.Ordinal))
            {
                Discovery.Store.Etcd.EtcdStoreOptions.ParseEndpoints(storeText); // validates, naming what is wrong
                etcd = storeText;
            }
            else if (storeText != "embedded")
            {
                throw new ArgumentException($"--store '{storeText}' must be embedded or etcd://HOST:PORT[,HOST:PORT...]");
            }

            if (etcd is not null && parse.GetValue(join) is not null)
            {
                throw new ArgumentException("--join is for the embedded store; with --store etcd every daemon talks to etcd");
            }

            var ttl = parse.GetValue(leaseTtl);
            if (ttl is < 2 or > 3600)
            {
                throw new ArgumentException($"--lease-ttl {ttl}: use 2 to 3600 seconds");
            }

            var endpoints = (parse.GetValue(api) is { Length: > 0 } given ? given : [ApiClientFactory.DefaultApi]).Select(ParseEndpoint).ToArray();
            var tcpApi = endpoints.FirstOrDefault(e => e.Scheme == "tcp");
            var security = ApiSecurity.Load(new ApiSecurityFiles
            {
                TlsCert = parse.GetValue(tlsCert),
                TlsKey = parse.GetValue(tlsKey),
                TlsCa = parse.GetValue(tlsCa),
                TokenFile = parse.GetValue(tokenFile),
                Insecure = parse.GetValue(insecure),
                SocketGroup = parse.GetValue(apiGroup),
            }, tcpApi is not null, tcpApi?.ToString() ?? "");
            var joinUrl = parse.GetValue(join);
            var etcdFiles = (Cert: parse.GetValue(etcdCert), Key: parse.GetValue(etcdKey), Ca: parse.GetValue(etcdCa));
            if (etcd is null && (etcdFiles.Cert ?? etcdFiles.Key ?? etcdFiles.Ca) is not null)
            {
                throw new ArgumentException("--etcd-cert/--etcd-key/--etcd-ca are for --store etcd://...");
            }

            var etcdTls = (etcdFiles.Cert ?? etcdFiles.Key ?? etcdFiles.Ca) is null
                ? null
                : ClientTls.Load("--etcd-cert", etcdFiles.Cert, "--etcd-key", etcdFiles.Key, "--etcd-ca", etcdFiles.Ca);
            var options = new DaemonOptions
            {
                Node = Validate.Label("--node", parse.GetValue(node)),
                AdvertiseAddress = Validate.IPv4("--advertise-addr", parse.GetValue(advertise)).ToString(),
                Etcd = etcd,
                LeaseTtl = TimeSpan.FromSeconds(ttl),
                Join = joinUrl is null ? null : ParseJoin(joinUrl, security),
                Security = security,
                EtcdTls = etcdTls,
                Dataplane = Enum.TryParse<DataplaneChoice>(parse.GetValue(dataplane), ignoreCase: true, out var d) ? d : throw new ArgumentException($"--dataplane '{parse.GetValue(dataplane)}' must be auto, ipvs or nftables"),
                ApiEndpoints = endpoints,
                StateDirectory = parse.GetValue(stateDir)!,
                LogFile = parse.GetValue(logFile),
                LogMaxSize = ParseSize("--log-max-size", parse.GetValue(logMaxSize)!),
                OtlpEndpoint = parse.GetValue(otlp) is { } o
                    ? Uri.TryCreate(o, UriKind.Absolute, out var ou) && ou.Scheme is "http" or "https" ? ou : throw new ArgumentException($"--otlp-endpoint '{o}' must be http(s)://HOST:PORT")
                    : null,
                L4MetricsBackends = parse.GetValue(l4Backends) is >= 0 and <= MaxL4MetricsBackends and var l4
                    ? l4
                    : throw new ArgumentException($"--l4-metrics-backends {parse.GetValue(l4Backends)}: use 0 to {MaxL4MetricsBackends} (the ingress network's addresses)"),
                DnsUpstreams = (parse.GetValue(upstream) ?? []).Select(ParseUpstream).ToArray(),
                ResolvConfRoots = parse.GetValue(resolvConfRoot) is { Length: > 0 } roots
                    ? roots.Select(r => TaskPaths.Root("--resolv-conf-root", r)).Distinct(StringComparer.Ordinal).ToArray()
                    : TaskPaths.DefaultResolvConfRoots,
                HealthPort = parse.GetValue(healthPort) is var hp && hp is >= 0 and <= 65535 && (hp == 0 || endpoints.All(e => e.Scheme == "unix" || e.Port != hp))
                    ? hp
                    : throw new ArgumentException($"--health-port {hp}: use 1-65535 (0: off), not a port of --api"),
                CommandTimeout = parse.GetValue(commandTimeout) is >= 1 and <= 3600 and var timeout
                    ? TimeSpan.FromSeconds(timeout)
                    : throw new ArgumentException("--command-timeout must be 1 to 3600 seconds"),
                ResyncInterval = parse.GetValue(resync) is >= 5 and <= 3600 and var interval
                    ? TimeSpan.FromSeconds(interval)
                    : throw new ArgumentException($"--resync-interval must be 5 to 3600 seconds, not {parse.GetValue(resync)}"),
                Ipvs = new IpvsOptions
                {
                    TcpTimeout = Seconds("--ipvs-tcp-timeout", parse.GetValue(ipvsTcp)),
                    TcpFinTimeout = Seconds("--ipvs-tcpfin-timeout", parse.GetValue(ipvsTcpFin)),
                    UdpTimeout = Seconds("--ipvs-udp-timeout", parse.GetValue(ipvsUdp)),
                    DrainPeriod = parse.GetValue(ipvsDrain) is >= 0 and <= 3600 and var drain ? TimeSpan.FromSeconds(drain) : throw new ArgumentException("--ipvs-drain must be 0 to 3600 seconds"),
                },
                Network = new NodeNetworkOptions
                {
                    IngressSandbox = parse.GetValue(sandbox)!,
                    IngressBridge = parse.GetValue(bridge)!,
                },
                Http = new Http.HttpEntryOptions
                {
                    Port = parse.GetValue(httpPort) is >= 0 and <= 65535 and var http ? http : throw new ArgumentException($"--http-port {parse.GetValue(httpPort)} is not a port (0 turns the entry off)"),
                    HttpsPort = parse.GetValue(httpsPort) is >= 1 and <= 65535 and var https && https != parse.GetValue(httpPort)
                        ? https
                        : throw new ArgumentException($"--https-port {parse.GetValue(httpsPort)}: use 1-65535, not --http-port's"),
                    CertsDirectory = parse.GetValue(certsDir) is { } dir ? CertsDirectory(dir) : null,
                    TrustedProxies = Http.HttpEntryOptions.ParseTrustedProxies(parse.GetValue(trustedProxies) ?? []),
                },
            };
            return options;
        }
    }

    /// <summary>A node has at most one backend per address of the ingress network (10.255.0.0/16).</summary>
    private const int MaxL4MetricsBackends = 65_534;

    /// <summary>An absolute path to an existing directory (not created: a mistyped path would otherwise serve nothing, silently).</summary>
    private static string CertsDirectory(string text)
    {
        var path = Validate.AbsolutePath("--certs-dir", text.Length > 1 ? text.TrimEnd('/') : text);
        return Directory.Exists(path) ? path : throw new ArgumentException($"--certs-dir '{Validate.Printable(text)}' is not a directory");
    }

    /// <summary>With TLS configured the join must use it (no silent downgrade to plain http); https needs the CA.</summary>
    private static Uri ParseJoin(string text, ApiSecurity security)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/")
        {
            throw new ArgumentException($"--join '{text}' must be https://HOST:PORT (or http://HOST:PORT without TLS)");
        }

        return (uri.Scheme, security.UsesTls) switch
        {
            ("http", true) => throw new ArgumentException($"--join '{text}': --tls-* are given, so join over https://"),
            ("https", false) => throw new ArgumentException($"--join '{text}': https needs --tls-cert, --tls-key and --tls-ca"),
            _ => uri,
        };
    }

    private static TimeSpan? Seconds(string option, int? value) => value switch
    {
        null => null,
        >= 1 and <= 31_536_000 => TimeSpan.FromSeconds(value.Value),
        _ => throw new ArgumentException($"{option} {value}: use 1 to 31536000 seconds"),
    };

    /// <summary>Smallest rotation size: below it a few long lines (exceptions) would rotate on every write.</summary>
    internal const long MinLogSize = 64 * 1024;

    /// <summary>A size in bytes: a whole number with an optional binary suffix K, M, G (also KB/KiB, MB/MiB, GB/GiB); 0 means never rotate.</summary>
    internal static long ParseSize(string option, string text)
    {
        var t = text.Trim();
        long unit = 1;
        foreach (var (suffixes, factor) in new (string[], long)[] { (["KiB", "KB", "K"], 1L << 10), (["MiB", "MB", "M"], 1L << 20), (["GiB", "GB", "G"], 1L << 30) })
        {
            var suffix = suffixes.FirstOrDefault(x => t.EndsWith(x, StringComparison.OrdinalIgnoreCase));
            if (suffix is not null)
            {
                unit = factor;
                t = t[..^suffix.Length].TrimEnd();
                break;
            }
        }

        if (!long.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n > long.MaxValue / unit)
        {
            throw new ArgumentException($"{option} '{text}' must be a size such as 10MiB, 512K or 1048576");
        }

        long bytes = n * unit;
        return bytes is 0 or >= MinLogSize ? bytes : throw new ArgumentException($"{option} '{text}': use 0 (never rotate) or at least 64K");
    }

    internal static System.Net.IPEndPoint ParseUpstream(string text)
    {
        var upstream = System.Net.IPEndPoint.TryParse(text, out var endpoint) && endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? new System.Net.IPEndPoint(endpoint.Address, endpoint.Port == 0 ? 53 : endpoint.Port)
            : throw new ArgumentException($"--dns-upstream '{text}' must be IPv4[:PORT]");
        Discovery.Dns.DnsUpstreamGuard.EnsureNotSelf([upstream], "--dns-upstream");
        return upstream;
    }

    private static Uri ParseEndpoint(string text)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri)
            && ((uri.Scheme == "unix" && uri.AbsolutePath.Length > 1) || (uri.Scheme == "tcp" && System.Net.IPAddress.TryParse(uri.Host, out _) && uri.Port > 0)))
        {
            return uri;
        }

        throw new ArgumentException($"--api '{text}' must be unix:///path/to/mesh.sock or tcp://IP:PORT");
    }
}
