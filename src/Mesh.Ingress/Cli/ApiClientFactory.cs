using System.Net.Http.Headers;
using System.Net.Sockets;
using Mesh.Discovery.Store;
using Mesh.Ingress.Security;

namespace Mesh.Ingress.Cli;

/// <summary>HTTP clients for a daemon's API: <c>unix:///path.sock</c>, <c>http://host:port</c> or <c>https://host:port</c>.</summary>
public static class ApiClientFactory
{
    public const string DefaultApi = "unix:///run/mesh/mesh.sock";

    /// <param name="credentials">For a TCP API: TLS (required for https) and the bearer token; a unix socket needs none.</param>
    public static HttpClient Create(string api, TimeSpan? timeout = null, ApiClientCredentials? credentials = null)
    {
        if (!IsTcp(api, out var uri) && uri?.Scheme != "unix")
        {
            throw new ArgumentException($"--api '{api}' must be unix:///path/to/mesh.sock, https://HOST:PORT or http://HOST:PORT");
        }

        if (uri!.Scheme != "unix")
        {
            return CreateTcp(uri, credentials ?? ApiClientCredentials.None, timeout ?? TimeSpan.FromSeconds(30));
        }

        var socketPath = uri.AbsolutePath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    throw new IOException(UnixConnectFailure(socketPath, e), e);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://mesh/"), Timeout = timeout ?? TimeSpan.FromSeconds(30) };
    }

    public static RemoteStore Store(string api, ApiClientCredentials? credentials = null) => new(Create(api, null, credentials), endpoint: api);

    /// <summary>
    /// Why connecting to the unix socket failed, naming it: .NET reports a missing socket file (ENOENT) as "Cannot
    /// assign requested address", which says nothing about a path.
    /// </summary>
    internal static string UnixConnectFailure(string socketPath, SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressNotAvailable => $"no socket at {socketPath}",
        SocketError.ConnectionRefused => $"nothing listens on {socketPath} (a socket left by a daemon that stopped?)",
        SocketError.AccessDenied => $"permission denied on {socketPath} (the socket is mode 0660: run as root or in the daemon's --api-group)",
        _ => $"cannot connect to {socketPath}: {e.Message}",
    };

    /// <summary>Whether <paramref name="api"/> names a TCP API (http, https, or the daemon's own tcp:// spelling).</summary>
    public static bool IsTcp(string api, out Uri? uri) =>
        Uri.TryCreate(api, UriKind.Absolute, out uri) && uri.Scheme is "http" or "https" or "tcp";

    /// <summary>
    /// A client of a TCP API (also the daemon's <c>--join</c> client): over https the server must chain to the cluster CA
    /// and name the host dialled, and our certificate is presented; the token, if any, goes in every request.
    /// </summary>
    public static HttpClient CreateTcp(Uri api, ApiClientCredentials credentials, TimeSpan timeout)
    {
        var https = api.Scheme == Uri.UriSchemeHttps;
        if (https && credentials.Tls is null)
        {
            throw new ArgumentException($"--api {api}: https needs --tls-ca (and --tls-cert/--tls-key for mutual TLS), or MESH_TLS_CA");
        }

        if (!https && credentials.Tls is not null)
        {
            throw new ArgumentException($"--api {api}: --tls-* are given, so use https://");
        }

        var handler = new SocketsHttpHandler { UseProxy = false };
        if (credentials.Tls is { } tls)
        {
            handler.SslOptions = tls.ToSslOptions();
        }

        var client = new HttpClient(handler)
        {
            BaseAddress = new UriBuilder(api) { Scheme = https ? "https" : "http", Path = "/" }.Uri,
            Timeout = timeout,
        };
        if (credentials.Token is { } token)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.Value);
        }

        return client;
    }
}
