using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Ingress.Proxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Lab;

/// <summary>
/// The lab's stand-in for a container: answers HTTP (and UDP datagrams) on one port with
/// "TASK NODE IP peer=PEER xff=XFF proxy=SOURCE": IP is the address the request arrived on, so tests can tell who
/// answered; PEER the socket's remote address, XFF the X-Forwarded-For header and SOURCE the client a PROXY v2
/// header named ("-" when absent), so tests can tell what the task learnt of the caller.
/// </summary>
public static class LabServer
{
    private const string ProxySourceKey = "mesh.proxy-source";

    public static async Task<int> RunAsync(string task, string node, int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Any, port, listen => listen.Use(next => ctx => ReadProxyHeaderAsync(ctx, next))));
        await using var app = builder.Build();
        app.UseWebSockets();
        app.Use(next => ctx => ctx.WebSockets.IsWebSocketRequest ? EchoAsync(ctx, task) : next(ctx));
        var health = new HealthSwitch();
        app.Use(next => ctx => health.TryHandleAsync(ctx) ?? next(ctx));
        app.Run(ctx =>
        {
            var items = ctx.Features.Get<IConnectionItemsFeature>()?.Items;
            var proxy = items is not null && items.TryGetValue(ProxySourceKey, out var source) ? source as string : null;
            var xff = ctx.Request.Headers["X-Forwarded-For"].ToString();
            var body = Encoding.ASCII.GetBytes(Answer(task, node, ctx.Connection.LocalIpAddress, ctx.Connection.RemoteIpAddress, xff, proxy));
            ctx.Response.ContentType = "text/plain";
            ctx.Response.ContentLength = body.Length;
            // The scheme the client used, as the L7 entry told it (the answer line keeps its format).
            ctx.Response.Headers["X-Lab-Forwarded-Proto"] = ctx.Request.Headers["X-Forwarded-Proto"].ToString() is { Length: > 0 } proto ? proto : "-";
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

    /// <summary>
    /// The health path a lab service's check can GET (<see cref="HealthPath"/>: 200 "ok", or the status it was told),
    /// and the switch that makes it fail: <c>POST /lab/health?status=503</c> (200 to recover), from the task's own
    /// namespace only (loopback), so a client of the mesh cannot flip it: <c>ip netns exec mesh-web.1 curl -X POST
    /// 'http://127.0.0.1/lab/health?status=503'</c>.
    /// </summary>
    private sealed class HealthSwitch
    {
        private int _status = StatusCodes.Status200OK;

        public Task? TryHandleAsync(HttpContext ctx)
        {
            if (ctx.Request.Path == HealthPath)
            {
                var status = Volatile.Read(ref _status);
                ctx.Response.StatusCode = status;
                ctx.Response.ContentType = "text/plain";
                return ctx.Response.WriteAsync(status == StatusCodes.Status200OK ? "ok\n" : "failing\n", ctx.RequestAborted);
            }

            if (ctx.Request.Path != SwitchPath)
            {
                return null;
            }

            if (!HttpMethods.IsPost(ctx.Request.Method) || ctx.Connection.RemoteIpAddress is not { } peer || !IPAddress.IsLoopback(peer))
            {
                ctx.Response.StatusCode = StatusCodes.Status403Forbidden;
                return ctx.Response.WriteAsync("POST from the task's own namespace (127.0.0.1) only\n", ctx.RequestAborted);
            }

            if (!int.TryParse(ctx.Request.Query["status"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var wanted) || wanted is < 200 or > 599)
            {
                ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
                return ctx.Response.WriteAsync("status=200-599\n", ctx.RequestAborted);
            }

            Volatile.Write(ref _status, wanted);
            ctx.Response.ContentType = "text/plain";
            return ctx.Response.WriteAsync(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{HealthPath} answers {wanted}\n"), ctx.RequestAborted);
        }
    }

    /// <summary>The path the lab's task server answers health checks on.</summary>
    public const string HealthPath = "/healthz";

    /// <summary>Where the lab's task server is told what <see cref="HealthPath"/> answers.</summary>
    public const string SwitchPath = "/lab/health";

    /// <summary>A WebSocket echo (for the L7 entry's tests): each text message comes back as "TASK: message".</summary>
    private static async Task EchoAsync(HttpContext ctx, string task)
    {
        using var socket = await ctx.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        var buffer = new byte[4096];
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, ctx.RequestAborted).ConfigureAwait(false);
            if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
            {
                await socket.CloseOutputAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, ctx.RequestAborted).ConfigureAwait(false);
                return;
            }

            var reply = Encoding.UTF8.GetBytes($"{task}: {Encoding.UTF8.GetString(buffer, 0, received.Count)}");
            await socket.SendAsync(reply, System.Net.WebSockets.WebSocketMessageType.Text, endOfMessage: true, ctx.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>The answer line; fields that are unknown or empty are "-" so the line always has six fields.</summary>
    public static string Answer(string task, string node, IPAddress? local, IPAddress? peer, string? xff, string? proxy) =>
        $"{task} {node} {Plain(local)} peer={(peer is null ? "-" : Plain(peer))} xff={Field(xff)} proxy={Field(proxy)}\n";

    private static string Plain(IPAddress? address) =>
        address is null ? "-" : (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();

    private static string Field(string? value) =>
        string.IsNullOrWhiteSpace(value) ? "-" : value.Replace(" ", "", StringComparison.Ordinal);

    /// <summary>
    /// Connection middleware: a connection that starts with a PROXY v2 signature has its header consumed and its
    /// source kept for the answer; any other connection is passed on untouched. A malformed header closes it.
    /// </summary>
    private static async Task ReadProxyHeaderAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var input = connection.Transport.Input;
        while (true)
        {
            var read = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
            var buffer = read.Buffer;
            var bytes = buffer.Length > ProxyHeaderV2.FixedLength + ProxyHeaderV2.MaxBodyLength
                ? buffer.Slice(0, ProxyHeaderV2.FixedLength + ProxyHeaderV2.MaxBodyLength).ToArray()
                : buffer.ToArray();
            ProxyParse parse;
            ProxyHeaderV2? header;
            int consumed;
            try
            {
                parse = ProxyHeaderV2.TryRead(bytes, out header, out consumed);
            }
            catch (FormatException)
            {
                input.AdvanceTo(buffer.End);
                return;
            }

            switch (parse)
            {
                case ProxyParse.Complete:
                    input.AdvanceTo(buffer.GetPosition(consumed));
                    if (header!.Source is { } source)
                    {
                        connection.Items[ProxySourceKey] = source.ToString();
                    }

                    await next(connection).ConfigureAwait(false);
                    return;
                case ProxyParse.NotProxy:
                    input.AdvanceTo(buffer.Start);
                    await next(connection).ConfigureAwait(false);
                    return;
                default:
                    if (read.IsCompleted)
                    {
                        input.AdvanceTo(buffer.End);
                        return;
                    }

                    input.AdvanceTo(buffer.Start, buffer.End);
                    break;
            }
        }
    }

    private static async Task ServeUdpAsync(Socket udp, string task, string node, CancellationToken ct)
    {
        var buffer = new byte[2048];
        while (!ct.IsCancellationRequested)
        {
            var received = await udp.ReceiveMessageFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), ct).ConfigureAwait(false);
            string? proxy = null;
            try
            {
                if (ProxyHeaderV2.TryRead(buffer.AsSpan(0, received.ReceivedBytes), out var header, out _) == ProxyParse.Complete)
                {
                    proxy = header!.Source?.ToString();
                }
            }
            catch (FormatException)
            {
                continue;
            }

            var peer = ((IPEndPoint)received.RemoteEndPoint).Address;
            var reply = Encoding.ASCII.GetBytes(Answer(task, node, received.PacketInformation.Address, peer, null, proxy));
            await udp.SendToAsync(reply, received.RemoteEndPoint, ct).ConfigureAwait(false);
        }
    }
}
