using System.Net.Sockets;
using Mesh.Discovery.Dns;

namespace Mesh.Ingress.Http;

/// <summary>
/// Opens the entry's connections to tasks from inside the ingress sandbox: the task addresses (10.255.x.y) are
/// reachable only over the ingress overlay, whose leg is in the sandbox, not in the node's namespace where the
/// entry listens. A socket stays in the namespace it was created in, so only its creation needs the namespace
/// (a short-lived thread, <see cref="NetworkNamespaceSockets"/>); pooled keep-alive connections amortize it.
/// </summary>
public sealed class SandboxConnector(string sandboxNetnsPath)
{
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var socket = NetworkNamespaceSockets.CreateSocket(sandboxNetnsPath, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.NoDelay = true;
            await socket.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
