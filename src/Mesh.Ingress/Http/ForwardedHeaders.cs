using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Transforms;

namespace Mesh.Ingress.Http;

/// <summary>
/// Tells the task who called: X-Forwarded-For/Proto/Host and RFC 7239 <c>Forwarded</c>. What a client sends in those
/// headers is discarded unless the client is a trusted proxy (<c>--trusted-proxies</c>): anyone could otherwise
/// claim any address. From a trusted proxy its values are kept and this hop appended. X-Forwarded-Prefix is passed
/// on from a trusted proxy only: the entry strips no prefix itself, so it has none of its own to announce.
/// </summary>
public sealed class ForwardedHeaders(HttpEntryOptions options)
{
    public const string XForwardedFor = "X-Forwarded-For";
    public const string XForwardedProto = "X-Forwarded-Proto";
    public const string XForwardedHost = "X-Forwarded-Host";
    public const string XForwardedPrefix = "X-Forwarded-Prefix";
    public const string Forwarded = "Forwarded";

    private static readonly string[] Names = [XForwardedFor, XForwardedProto, XForwardedHost, XForwardedPrefix, Forwarded];

    public ValueTask ApplyAsync(RequestTransformContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.HttpContext.Request;
        var headers = context.ProxyRequest.Headers;
        var incoming = request.Headers;
        foreach (var name in Names)
        {
            headers.Remove(name);
        }

        var peer = context.HttpContext.Connection.RemoteIpAddress;
        if (peer is { IsIPv4MappedToIPv6: true })
        {
            peer = peer.MapToIPv4();
        }

        var trusted = options.IsTrusted(peer);
        var client = peer?.ToString() ?? "unknown";
        var host = request.Host.Value ?? "";
        headers.TryAddWithoutValidation(XForwardedFor, Join(trusted ? incoming[XForwardedFor].ToString() : null, client));
        headers.TryAddWithoutValidation(XForwardedProto, trusted && !string.IsNullOrEmpty(incoming[XForwardedProto]) ? incoming[XForwardedProto].ToString() : request.Scheme);
        headers.TryAddWithoutValidation(XForwardedHost, trusted && !string.IsNullOrEmpty(incoming[XForwardedHost]) ? incoming[XForwardedHost].ToString() : host);
        if (trusted && !string.IsNullOrEmpty(incoming[XForwardedPrefix]))
        {
            headers.TryAddWithoutValidation(XForwardedPrefix, incoming[XForwardedPrefix].ToString());
        }

        headers.TryAddWithoutValidation(Forwarded, Join(trusted ? incoming[Forwarded].ToString() : null, ForwardedElement(peer, request.Scheme, host)));
        return ValueTask.CompletedTask;
    }

    /// <summary>One RFC 7239 element: <c>for=198.18.0.100;proto=http;host=web.test</c> (IPv6 and host:port quoted, as the RFC requires).</summary>
    public static string ForwardedElement(IPAddress? peer, string scheme, string host)
    {
        var node = peer is null ? "unknown" : peer.AddressFamily == AddressFamily.InterNetworkV6 ? $"\"[{peer}]\"" : peer.ToString();
        var element = $"for={node};proto={scheme}";
        return host.Length == 0 ? element : element + ";host=" + Token(host);
    }

    private static string Token(string value) =>
        value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '~') ? value : "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static string Join(string? before, string value) => string.IsNullOrWhiteSpace(before) ? value : before + ", " + value;
}
