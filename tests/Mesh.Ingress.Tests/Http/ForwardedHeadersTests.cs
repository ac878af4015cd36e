using System.Net;
using Mesh.Ingress.Http;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Transforms;

namespace Mesh.Ingress.Tests.Http;

public sealed class ForwardedHeadersTests
{
    private static async Task<HttpRequestMessage> ApplyAsync(string peer, string? trusted, params (string Name, string Value)[] incoming)
    {
        var http = new DefaultHttpContext();
        http.Connection.RemoteIpAddress = IPAddress.Parse(peer);
        http.Request.Scheme = "http";
        http.Request.Host = new HostString("web.test");
        var proxyRequest = new HttpRequestMessage();
        foreach (var (name, value) in incoming)
        {
            http.Request.Headers[name] = value;
            proxyRequest.Headers.TryAddWithoutValidation(name, value); // YARP copies the client's headers before transforms run
        }

        var options = new HttpEntryOptions { TrustedProxies = trusted is null ? [] : HttpEntryOptions.ParseTrustedProxies([trusted]) };
        await new ForwardedHeaders(options).ApplyAsync(new RequestTransformContext { HttpContext = http, ProxyRequest = proxyRequest, Path = "/", Query = new QueryTransformContext(http.Request) });
        return proxyRequest;
    }

    private static string Header(HttpRequestMessage request, string name) => string.Join(", ", request.Headers.GetValues(name));

    [Fact]
    public async Task An_untrusted_clients_forwarding_headers_are_replaced_by_what_the_entry_saw()
    {
        var request = await ApplyAsync("198.18.0.100", null,
            ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil.test"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Prefix", "/admin"), ("Forwarded", "for=6.6.6.6"));
        Assert.Equal("198.18.0.100", Header(request, "X-Forwarded-For"));
        Assert.Equal("web.test", Header(request, "X-Forwarded-Host"));
        Assert.Equal("http", Header(request, "X-Forwarded-Proto"));
        Assert.False(request.Headers.Contains("X-Forwarded-Prefix"));
        Assert.Equal("for=198.18.0.100;proto=http;host=web.test", Header(request, "Forwarded"));
    }

    [Fact]
    public async Task A_trusted_proxys_headers_are_kept_and_this_hop_appended()
    {
        var request = await ApplyAsync("::ffff:10.1.2.3", "10.1.0.0/16",
            ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Prefix", "/shop"), ("Forwarded", "for=203.0.113.7;proto=https"));
        Assert.Equal("203.0.113.7, 10.1.2.3", Header(request, "X-Forwarded-For"));
        Assert.Equal("https", Header(request, "X-Forwarded-Proto"));
        Assert.Equal("/shop", Header(request, "X-Forwarded-Prefix"));
        Assert.Equal("for=203.0.113.7;proto=https, for=10.1.2.3;proto=http;host=web.test", Header(request, "Forwarded"));
    }

    [Fact]
    public void Forwarded_quotes_ipv6_and_a_host_with_a_port_as_rfc_7239_requires()
    {
        Assert.Equal("for=\"[2001:db8::1]\";proto=http;host=\"web.test:8080\"", ForwardedHeaders.ForwardedElement(IPAddress.Parse("2001:db8::1"), "http", "web.test:8080"));
    }

    [Theory]
    [InlineData("10.0.0.0/8,198.18.0.5", "10.9.9.9", true)]
    [InlineData("10.0.0.0/8,198.18.0.5", "198.18.0.5", true)]
    [InlineData("10.0.0.0/8,198.18.0.5", "198.18.0.6", false)]
    public void Trusted_proxies_are_cidrs_or_addresses(string list, string peer, bool trusted) =>
        Assert.Equal(trusted, new HttpEntryOptions { TrustedProxies = HttpEntryOptions.ParseTrustedProxies([list]) }.IsTrusted(IPAddress.Parse(peer)));

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("ten")]
    [InlineData("10.1")]
    public void A_trusted_proxy_that_is_not_an_address_is_refused_by_name(string value)
    {
        var e = Assert.Throws<ArgumentException>(() => HttpEntryOptions.ParseTrustedProxies([value]));
        Assert.Contains("--trusted-proxies", e.Message, StringComparison.Ordinal);
    }
}
