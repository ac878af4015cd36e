using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Lab;

/// <summary>
/// The lab's stand-in for a container: answers HTTP (and UDP datagrams) on one port with
/// "TASK NODE IP", IP being the address the request arrived on, so tests can tell who answered.
/// </summary>
public static class LabServer
{
    public static async Task<int> RunAsync(string task, string node, int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Any, port));
        await using var app = builder.Build();
        app.Run(ctx =>
        {
            var body = Encoding.ASCII.GetBytes($"{task} {node} {ctx.Connection.LocalIpAddress}\n");
            ctx.Response.ContentType = "text/plain";
            ctx.Response.ContentLength = body.Length;
            return ctx.Response.Body.WriteAsync(body, ctx.RequestAborted).AsTask();
        });

        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.PacketInformation, true);
        udp.Bind(new IPEndPoint(IPAddress.Any, port));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var udpLoop = ServeUdpAsync(udp, task, node, cancellationToken);
        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        udp.Close();
        try
        {
            await udpLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // shutting down
        }

        return 0;
    }

    private static async Task ServeUdpAsync(Socket udp, string task, string node, CancellationToken ct)
    {
        var buffer = new byte[2048];
        while (!ct.IsCancellationRequested)
        {
            var received = await udp.ReceiveMessageFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), ct).ConfigureAwait(false);
            var reply = Encoding.ASCII.GetBytes($"{task} {node} {received.PacketInformation.Address}\n");
            await udp.SendToAsync(reply, received.RemoteEndPoint, ct).ConfigureAwait(false);
        }
    }
}
