using System.Net;

namespace Mesh.Discovery.Dns;

/// <summary>
/// Keeps the embedded resolver from forwarding to itself: a query it cannot answer would come straight back, be
/// forwarded again, and circle until every try times out (one client query becoming hundreds of forwards). Stateless.
/// </summary>
public static class DnsUpstreamGuard
{
    private static readonly IPAddress EmbeddedResolver = IPAddress.Parse(ResolvConf.EmbeddedResolverAddress);

    /// <summary>The embedded resolver's own address, 127.0.0.11 (also as ::ffff:127.0.0.11), on any port.</summary>
    public static bool IsEmbeddedResolver(IPAddress address) =>
        (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).Equals(EmbeddedResolver);

    /// <summary>
    /// Why <paramref name="upstream"/> is the resolver itself, or null when it is not: 127.0.0.11 (every task's
    /// 127.0.0.11 is DNATed to us); one of <paramref name="ownAddresses"/> (the task namespace's own addresses: a DNS
    /// server there would normally forward to 127.0.0.11, i.e. back to us); or one of <paramref name="listening"/>
    /// (the sockets we serve on; a wildcard listener matches any loopback address on its port).
    /// </summary>
    public static string? WhySelf(IPEndPoint upstream, IEnumerable<IPAddress> ownAddresses, IEnumerable<IPEndPoint?> listening)
    {
        var address = upstream.Address.IsIPv4MappedToIPv6 ? upstream.Address.MapToIPv4() : upstream.Address;
        if (address.Equals(EmbeddedResolver)) return $"{ResolvConf.EmbeddedResolverAddress} is the embedded resolver itself";
        if (ownAddresses.Any(a => (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Equals(address))) return "an address of the task's own namespace";
        foreach (var l in listening)
        {
            if (l is null || l.Port != upstream.Port) continue;
            bool wildcard = l.Address.Equals(IPAddress.Any) || l.Address.Equals(IPAddress.IPv6Any);
            if (l.Address.Equals(address) || (wildcard && IPAddress.IsLoopback(address))) return "the embedded resolver's own listening socket";
        }
        return null;
    }

    /// <summary>
    /// Start-time check of configured upstreams (e.g. <c>--dns-upstream</c>): throws <see cref="ArgumentException"/>
    /// naming <paramref name="option"/> when one of them is the embedded resolver's address.
    /// </summary>
    public static void EnsureNotSelf(IEnumerable<IPEndPoint> upstreams, string option)
    {
        foreach (var u in upstreams)
        {
            if (IsEmbeddedResolver(u.Address))
                throw new ArgumentException($"{option} {u}: {ResolvConf.EmbeddedResolverAddress} is the embedded resolver itself (inside every task it is Mesh), so forwarding there would loop; give the node's real resolver instead");
        }
    }
}
