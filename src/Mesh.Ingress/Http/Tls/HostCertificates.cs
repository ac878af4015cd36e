using System.Collections.Frozen;

namespace Mesh.Ingress.Http.Tls;

/// <summary>
/// An immutable set of host certificates and the SNI pick: the exact host first, then a wildcard one label up
/// (<c>*.example</c> covers <c>a.example</c>, not <c>a.b.example</c> nor <c>example</c>, as RFC 6125 has it), else none.
/// </summary>
public sealed class HostCertificates
{
    public static readonly HostCertificates Empty = new(FrozenDictionary<string, HostCertificate>.Empty);

    private readonly FrozenDictionary<string, HostCertificate> _byHost;

    public HostCertificates(IReadOnlyDictionary<string, HostCertificate> byHost)
    {
        ArgumentNullException.ThrowIfNull(byHost);
        _byHost = byHost.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    public IReadOnlyDictionary<string, HostCertificate> ByHost => _byHost;

    /// <summary>The certificate for a client's SNI name; null for none (no SNI, or a host without one).</summary>
    public HostCertificate? Select(string? serverName)
    {
        if (string.IsNullOrEmpty(serverName))
        {
            return null;
        }

        var name = serverName.TrimEnd('.');
        if (_byHost.TryGetValue(name, out var exact))
        {
            return exact;
        }

        var dot = name.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 && _byHost.TryGetValue("*" + name[dot..], out var wildcard) ? wildcard : null;
    }
}
