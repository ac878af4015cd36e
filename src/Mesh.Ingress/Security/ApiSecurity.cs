using System.Security.Cryptography.X509Certificates;
using Mesh.Discovery.Security;

namespace Mesh.Ingress.Security;

/// <summary>
/// The credentials of one daemon, read and checked at start (every error names its option): the node certificate and
/// key with the cluster CA (mutual TLS on the TCP API and for <c>--join</c>), the bearer token, the unix socket's group.
/// </summary>
public sealed class ApiSecurity
{
    public static ApiSecurity None { get; } = new();

    /// <summary>This node's certificate with its key: the TCP API's server certificate and the join client's certificate.</summary>
    public X509Certificate2? Certificate { get; private init; }

    public ClusterTrust? Trust { get; private init; }

    public BearerToken? Token { get; private init; }

    public bool Insecure { get; private init; }

    public uint? SocketGroup { get; private init; }

    public bool UsesTls => Certificate is not null;

    /// <summary>What the <c>--join</c> client presents and checks (null without TLS).</summary>
    public ClientTls? JoinTls => Trust is null ? null : new ClientTls(Trust, Certificate);

    /// <summary>
    /// Reads and checks the files. <paramref name="hasTcpApi"/>: the daemon will listen on TCP, which is refused
    /// without TLS or a token unless <c>--insecure-api</c> says the operator means it.
    /// </summary>
    public static ApiSecurity Load(ApiSecurityFiles files, bool hasTcpApi, string tcpApiText = "tcp://")
    {
        ArgumentNullException.ThrowIfNull(files);
        var anyTls = files.TlsCert is not null || files.TlsKey is not null || files.TlsCa is not null;
        X509Certificate2? certificate = null;
        ClusterTrust? trust = null;
        if (anyTls)
        {
            if (files.TlsCert is null || files.TlsKey is null || files.TlsCa is null)
            {
                throw new ArgumentException("--tls-cert, --tls-key and --tls-ca go together: this node's certificate, its key, and the cluster CA (mesh ca init / mesh ca issue make them)");
            }

            trust = ClusterTrust.Load("--tls-ca", files.TlsCa);
            certificate = CertificateFiles.LoadWithKey("--tls-cert", files.TlsCert, "--tls-key", files.TlsKey);
            foreach (var usage in new[] { ClusterTrust.ServerAuth, ClusterTrust.ClientAuth })
            {
                if (!trust.IsTrusted(certificate, usage, out var why))
                {
                    throw new ArgumentException($"--tls-cert '{files.TlsCert}' cannot be used with --tls-ca '{files.TlsCa}': {why}");
                }
            }
        }

        var token = files.TokenFile is null ? null : BearerToken.Load("--api-token-file", files.TokenFile);
        if (files.Insecure && (anyTls || token is not null))
        {
            throw new ArgumentException("--insecure-api contradicts --tls-*/--api-token-file: leave it out");
        }

        if (hasTcpApi && !anyTls && token is null && !files.Insecure)
        {
            throw new ArgumentException(
                $"--api {tcpApiText} would give anyone who reaches it full control of this node: give --tls-cert/--tls-key/--tls-ca (mutual TLS with the cluster CA) "
                + "and/or --api-token-file, or --insecure-api if that is really meant");
        }

        return new ApiSecurity
        {
            Certificate = certificate,
            Trust = trust,
            Token = token,
            Insecure = files.Insecure,
            SocketGroup = files.SocketGroup is null ? null : UnixApiSocket.ResolveGroup("--api-group", files.SocketGroup),
        };
    }
}
