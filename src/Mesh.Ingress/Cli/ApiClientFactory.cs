using System.Net.Sockets;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Cli;

/// <summary>HTTP clients for a daemon's API: <c>unix:///path.sock</c> or <c>http://host:port</c>.</summary>
public static class ApiClientFactory
{
    public const string DefaultApi = "unix:///run/mesh/mesh.sock";

    public static HttpClient Create(string api, TimeSpan? timeout = null)
    {
        if (!Uri.TryCreate(api, UriKind.Absolute, out var uri) || uri.Scheme is not ("unix" or "http" or "tcp"))
        {
            throw new ArgumentException($"--api '{api}' must be unix:///path/to/mesh.sock or http://HOST:PORT");
        }

        if (uri.Scheme != "unix")
        {
            var baseUri = new UriBuilder(uri) { Scheme = "http", Path = "/" }.Uri;
            return new HttpClient { BaseAddress = baseUri, Timeout = timeout ?? TimeSpan.FromSeconds(30) };
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
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://mesh/"), Timeout = timeout ?? TimeSpan.FromSeconds(30) };
    }

    public static RemoteStore Store(string api) => new(Create(api));
}
