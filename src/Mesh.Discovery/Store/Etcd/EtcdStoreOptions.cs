using System.Globalization;
using Mesh.Discovery.Model;

namespace Mesh.Discovery.Store.Etcd;

/// <summary>How an <see cref="EtcdStore"/> reaches etcd and how it behaves when etcd misbehaves.</summary>
public sealed record EtcdStoreOptions
{
    /// <summary>The members' client URLs (<c>http://host:port</c>); tried in order, failing over to the next.</summary>
    public required IReadOnlyList<Uri> Endpoints { get; init; }

    /// <summary>Every key the store owns lives under this prefix. Must start and end with '/'.</summary>
    public string Prefix { get; init; } = "/mesh/";

    /// <summary>
    /// The node whose daemon uses this store (its <c>--node</c>). Only that node's <c>alive/</c> key is put on this
    /// store's lease: registering another node through this daemon's API writes the node object but never makes this
    /// daemon vouch for its liveness (that node's own daemon does). Null: this store vouches for no node.
    /// </summary>
    public string? Node { get; init; }

    /// <summary>Ports no service may publish (the documented list plus the daemon's own API ports).</summary>
    public ReservedPorts ReservedPorts { get; init; } = ReservedPorts.Default;

    /// <summary>TTL of the liveness lease of the nodes registered through this store; the node's tasks leave
    /// every other node's state this long after its daemon stops keeping the lease alive.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>TCP connect timeout per member: a blackholed member costs at most this much per attempt.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Timeout of one unary request to one member (watches are bounded by their own timeout).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Rounds over all members after the first one failed entirely (transport errors only).</summary>
    public int TransportRetries { get; init; } = 2;

    /// <summary>First backoff between rounds; doubles with jitter.</summary>
    public TimeSpan TransportRetryDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Read-compute-commit attempts when another writer committed in between (compare-and-swap lost).</summary>
    public int MaxCommitAttempts { get; init; } = 64;

    /// <summary>
    /// Client TLS (<c>--etcd-ca</c>, and <c>--etcd-cert/--etcd-key</c> for etcd's <c>--client-cert-auth</c>): the members
    /// are then reached over https and must present a certificate chained to that CA. Null: plain http.
    /// </summary>
    public Security.ClientTls? Tls { get; init; }

    /// <summary>The same members over https with <paramref name="tls"/>.</summary>
    public EtcdStoreOptions WithTls(Security.ClientTls tls) => this with
    {
        Tls = tls,
        Endpoints = Endpoints.Select(e => new UriBuilder(e) { Scheme = Uri.UriSchemeHttps, Port = e.Port }.Uri).ToList(),
    };

    /// <summary>Parses <c>etcd://host:port[,host:port…]</c> (the daemon's <c>--store</c> value) into options.</summary>
    public static EtcdStoreOptions Parse(string store, string prefix = "/mesh/") => new() { Endpoints = ParseEndpoints(store), Prefix = prefix };

    /// <summary>
    /// <c>etcd://h1:2379,h2:2379</c> → <c>http://h1:2379/</c>, <c>http://h2:2379/</c>. The port defaults to 2379;
    /// IPv6 literals go in brackets (<c>etcd://[fd00::1]:2379</c>).
    /// </summary>
    public static IReadOnlyList<Uri> ParseEndpoints(string store)
    {
        ArgumentNullException.ThrowIfNull(store);
        const string scheme = "etcd://";
        if (!store.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw new FormatException($"'{store}' is not etcd://HOST:PORT[,HOST:PORT...]");
        }

        var endpoints = new List<Uri>();
        foreach (var raw in store[scheme.Length..].TrimEnd('/').Split(',', StringSplitOptions.TrimEntries))
        {
            if (raw.Length == 0 || raw.Contains('/', StringComparison.Ordinal) || raw.Contains('@', StringComparison.Ordinal)
                || !Uri.TryCreate("http://" + raw, UriKind.Absolute, out var uri) || uri.AbsolutePath != "/" || uri.Host.Length == 0)
            {
                throw new FormatException($"'{raw}' in '{store}' is not HOST:PORT");
            }

            var hasPort = raw.StartsWith('[') ? raw.Contains("]:", StringComparison.Ordinal) : raw.Contains(':', StringComparison.Ordinal);
            var port = hasPort ? uri.Port : 2379;
            endpoints.Add(new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{uri.Host}:{port}/")));
        }

        return endpoints;
    }
}
