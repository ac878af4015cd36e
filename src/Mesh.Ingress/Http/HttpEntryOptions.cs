using System.Net;

namespace Mesh.Ingress.Http;

/// <summary>The node's L7 entry as <c>mesh daemon</c> is told: <c>--http-port</c>, <c>--https-port</c>, <c>--certs-dir</c> and <c>--trusted-proxies</c>.</summary>
public sealed record HttpEntryOptions
{
    public const int DefaultPort = 80;

    /// <summary>
    /// 443, as 80 is for HTTP: a node serving HTTPS serves it where clients look for it. The listener only opens with
    /// <see cref="CertsDirectory"/>: without certificates there is nothing to present, so the default costs nothing.
    /// </summary>
    public const int DefaultHttpsPort = 443;

    /// <summary>The TCP port the entry listens on in the node's namespace, on every address; 0 turns the entry off.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>The TCP port of the HTTPS entry (HTTP/1.1 and HTTP/2 by ALPN), open when <see cref="CertsDirectory"/> is set.</summary>
    public int HttpsPort { get; init; } = DefaultHttpsPort;

    /// <summary>The directory of <c>&lt;host&gt;.crt</c>/<c>&lt;host&gt;.key</c> pairs (Tls.CertificateDirectory); null: no HTTPS entry.</summary>
    public string? CertsDirectory { get; init; }

    /// <summary>The HTTPS port when the HTTPS entry is on, else 0.</summary>
    public int ActiveHttpsPort => CertsDirectory is null ? 0 : HttpsPort;

    /// <summary>Peers whose X-Forwarded-* and Forwarded headers are kept (and appended to); everyone else's are dropped.</summary>
    public IReadOnlyList<IPNetwork> TrustedProxies { get; init; } = [];

    public bool IsTrusted(IPAddress? peer)
    {
        if (peer is null)
        {
            return false;
        }

        var address = peer.IsIPv4MappedToIPv6 ? peer.MapToIPv4() : peer;
        foreach (var network in TrustedProxies)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Parses <c>--trusted-proxies</c>: CIDRs or single addresses, comma separated.</summary>
    public static IReadOnlyList<IPNetwork> ParseTrustedProxies(IEnumerable<string> values)
    {
        var result = new List<IPNetwork>();
        foreach (var item in values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)))
        {
            // IPAddress also reads "10.1" as 10.0.0.1: an IPv4 address must have its four parts written out.
            var address = item.Split('/')[0];
            var written = address.Contains(':', StringComparison.Ordinal) || address.Split('.').Length == 4;
            if (written && IPNetwork.TryParse(item, out var network))
            {
                result.Add(network);
            }
            else if (written && !item.Contains('/', StringComparison.Ordinal) && IPAddress.TryParse(item, out var ip))
            {
                result.Add(new IPNetwork(ip, ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                throw new ArgumentException($"--trusted-proxies '{Mesh.Discovery.Model.Validate.Printable(item)}' is not an address or CIDR (e.g. 198.18.0.0/24)");
            }
        }

        return result;
    }
}
