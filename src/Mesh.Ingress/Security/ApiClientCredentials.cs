using Mesh.Discovery.Security;

namespace Mesh.Ingress.Security;

/// <summary>What a client of a TCP API presents: TLS against the cluster CA (with its certificate for mutual TLS) and/or the bearer token.</summary>
public sealed record ApiClientCredentials(ClientTls? Tls, BearerToken? Token)
{
    public static ApiClientCredentials None { get; } = new(null, null);
}
