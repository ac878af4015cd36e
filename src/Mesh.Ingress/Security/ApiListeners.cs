using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Mesh.Discovery.Security;
using Mesh.Discovery.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Security;

/// <summary>
/// How the API listens: unix sockets created 0660 before listen() (<see cref="UnixApiSocket"/>), TCP endpoints with
/// mutual TLS against the cluster CA when configured, and the bearer token checked on every TCP request.
/// </summary>
public static partial class ApiListeners
{
    public static void Configure(IWebHostBuilder host, IReadOnlyList<Uri> endpoints, ApiSecurity security)
    {
        host.UseSockets(sockets => sockets.CreateBoundListenSocket = endpoint => endpoint is UnixDomainSocketEndPoint unix
            ? UnixApiSocket.Bind(unix.ToString(), security.SocketGroup)
            : SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint));
        host.ConfigureKestrel(kestrel =>
        {
            var log = kestrel.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Mesh.Api.Security");
            foreach (var endpoint in endpoints)
            {
                if (endpoint.Scheme == "unix")
                {
                    kestrel.ListenUnixSocket(endpoint.AbsolutePath);
                }
                else
                {
                    kestrel.Listen(IPAddress.Parse(endpoint.Host), endpoint.Port, listen => UseTls(listen, security, log));
                    var mode = string.Join(" + ", new[] { security.UsesTls ? "mutual TLS (cluster CA)" : null, security.Token is null ? null : "bearer token" }.OfType<string>());
                    if (mode.Length == 0)
                    {
                        InsecureTcpApi(log, endpoint.ToString());
                    }
                    else
                    {
                        TcpApi(log, endpoint.ToString(), mode);
                    }
                }
            }
        });
    }

    /// <summary>Every request that did not come through a unix socket must carry the token (when one is configured).</summary>
    public static void UseApiAuthentication(this IApplicationBuilder app, ApiSecurity security, ILogger log)
    {
        if (security.Token is not { } token)
        {
            return;
        }

        app.Use(async (context, next) =>
        {
            // Kestrel gives every TCP connection an IP local address and a unix socket connection none: only the latter,
            // guarded by the socket file's mode, skips the token. (The transport's endpoint feature is not visible here.)
            var unix = context.Connection.LocalIpAddress is null && context.Connection.LocalPort == 0;
            if (unix || token.Matches(context.Request.Headers.Authorization))
            {
                await next(context).ConfigureAwait(false);
                return;
            }

            RejectedToken(log, context.Connection.RemoteIpAddress?.ToString() ?? "?", context.Request.Method, context.Request.Path);
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await context.Response.WriteAsJsonAsync(new ApiError("missing or wrong bearer token: send Authorization: Bearer <the token of --api-token-file>"), MeshJson.Options).ConfigureAwait(false);
        });
    }

    private static void UseTls(ListenOptions listen, ApiSecurity security, ILogger log)
    {
        if (security.Certificate is not { } certificate || security.Trust is not { } trust)
        {
            return;
        }

        listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = certificate,
            SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            CheckCertificateRevocation = false,
            // Kestrel's verdict is against the system roots; ours is against the cluster CA only.
            ClientCertificateValidation = (client, _, _) =>
            {
                if (trust.IsTrusted(client, ClusterTrust.ClientAuth, out var why))
                {
                    return true;
                }

                RejectedCertificate(log, why);
                return false;
            },
        });
    }

    [LoggerMessage(EventId = 7003, Level = LogLevel.Information, Message = "API on {Endpoint} requires {Mode}")]
    private static partial void TcpApi(ILogger logger, string endpoint, string mode);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Warning, Message = "API on {Endpoint} has NO authentication (--insecure-api): anyone who reaches it controls this node")]
    private static partial void InsecureTcpApi(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "API request from {Remote} refused (401): {Method} {Path} without the bearer token")]
    private static partial void RejectedToken(ILogger logger, string remote, string method, string path);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "API TLS client refused: {Reason}")]
    private static partial void RejectedCertificate(ILogger logger, string reason);
}
