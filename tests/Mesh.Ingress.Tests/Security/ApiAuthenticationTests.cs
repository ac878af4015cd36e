using System.Net;
using System.Net.Http.Json;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Security;
using Mesh.Discovery.Store;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Security;

namespace Mesh.Ingress.Tests.Security;

/// <summary>The TCP API refuses whoever lacks the credential (401, or no TLS session at all) and such a refusal changes nothing.</summary>
public sealed class ApiAuthenticationTests : IDisposable
{
    private readonly Credentials _files = new();

    public void Dispose() => _files.Dispose();

    private static StringContent Service(string name) => new($"{{\"name\":\"{name}\",\"ports\":[{{\"published\":9090,\"target\":80}}]}}", Encoding.UTF8, "application/json");

    private ApiSecurity Mtls() => ApiSecurity.Load(new ApiSecurityFiles { TlsCert = _files.Cert("mesh-n1"), TlsKey = _files.Key("mesh-n1"), TlsCa = _files.Ca }, hasTcpApi: true);

    private ClientTls Client(string cert, string key, string ca) => ClientTls.Load("--tls-cert", cert, "--tls-key", key, "--tls-ca", ca);

    private HttpClient Tcp(Uri api, ClientTls? tls = null, BearerToken? token = null) =>
        ApiClientFactory.CreateTcp(api, new ApiClientCredentials(tls, token), TimeSpan.FromSeconds(10));

    [Fact]
    public async Task Token_mode_requests_without_the_token_get_401_and_change_nothing()
    {
        var security = ApiSecurity.Load(new ApiSecurityFiles { TokenFile = _files.TokenFile }, hasTcpApi: true);
        await using var api = await SecuredApi.StartAsync(security, _files.Directory);
        var before = await api.Store.GetStateAsync();

        using (var anonymous = Tcp(api.Http))
        {
            foreach (var authorization in new string?[] { null, "Bearer wrong-token-of-the-right-kind-0000000000", "Bearer " + _files.Token[..^1], "Basic " + _files.Token, "Bearer" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "v1/services") { Content = Service("evil") };
                if (authorization is not null)
                {
                    request.Headers.TryAddWithoutValidation("Authorization", authorization);
                }

                using var response = await anonymous.SendAsync(request);
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
                Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
            }

            using var read = await anonymous.GetAsync(new Uri("v1/state", UriKind.Relative));
            Assert.Equal(HttpStatusCode.Unauthorized, read.StatusCode);
            using var metrics = await anonymous.GetAsync(new Uri("metrics", UriKind.Relative));
            Assert.Equal(HttpStatusCode.Unauthorized, metrics.StatusCode);
        }

        Assert.Same(before, await api.Store.GetStateAsync());

        using var authorized = Tcp(api.Http, token: BearerToken.Load("--api-token-file", _files.TokenFile));
        using (var created = await authorized.PostAsync(new Uri("v1/services", UriKind.Relative), Service("web")))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var state = await authorized.GetFromJsonAsync<ClusterState>("v1/state", MeshJson.Options);
        Assert.Equal(["web"], state!.Services.Select(s => s.Name));

        // The unix socket is guarded by its mode, not by the token.
        using var local = ApiClientFactory.Create("unix://" + api.Socket);
        using var info = await local.GetAsync(new Uri("v1/info", UriKind.Relative));
        Assert.True(HttpStatusCode.OK == info.StatusCode, await info.Content.ReadAsStringAsync());
        Assert.Equal(UnixApiSocket.Mode, File.GetUnixFileMode(api.Socket));
    }

    [Fact]
    public async Task Mtls_mode_without_a_certificate_of_the_cluster_ca_there_is_no_session_and_nothing_changes()
    {
        await using var api = await SecuredApi.StartAsync(Mtls(), _files.Directory);
        var before = await api.Store.GetStateAsync();

        var refused = new (string Why, HttpClient Client)[]
        {
            ("no client certificate", Tcp(api.Https, ClientTls.Load("--tls-cert", null, "--tls-key", null, "--tls-ca", _files.Ca))),
            ("a certificate of another CA", Tcp(api.Https, Client(_files.OtherCert, _files.OtherKey, _files.Ca))),
            ("plain http to the TLS port", Tcp(api.Http)),
        };
        foreach (var (why, client) in refused)
        {
            using (client)
            {
                var e = await Record.ExceptionAsync(async () =>
                {
                    using var response = await client.PostAsync(new Uri("v1/services", UriKind.Relative), Service("evil"));
                    // plain http gets no HTTP answer from a TLS listener; if anything answered, it must not be a success
                    Assert.False(response.IsSuccessStatusCode, $"{why}: {response.StatusCode}");
                });
                Assert.True(e is HttpRequestException or IOException, $"{why}: expected the connection to fail, got {e?.GetType().Name ?? "an answer"}: {e?.Message}");
            }
        }

        Assert.Same(before, await api.Store.GetStateAsync());

        // A client that trusts another CA refuses our server (the server is checked against the given CA only).
        using (var suspicious = Tcp(api.Https, Client(_files.Cert("mesh-n2"), _files.Key("mesh-n2"), _files.OtherCa)))
        {
            var e = await Assert.ThrowsAsync<HttpRequestException>(() => suspicious.GetAsync(new Uri("v1/info", UriKind.Relative)));
            Assert.Equal(HttpRequestError.SecureConnectionError, e.HttpRequestError);
        }

        // The server's certificate must also name the host dialled: it names 127.0.0.1 and mesh-n1, not localhost.
        using (var wrongName = Tcp(new Uri($"https://localhost:{api.Port}/"), Client(_files.Cert("mesh-n2"), _files.Key("mesh-n2"), _files.Ca)))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => wrongName.GetAsync(new Uri("v1/info", UriKind.Relative)));
        }

        using var good = Tcp(api.Https, Client(_files.Cert("mesh-n2"), _files.Key("mesh-n2"), _files.Ca));
        using (var created = await good.PostAsync(new Uri("v1/services", UriKind.Relative), Service("web")))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        Assert.Equal(["web"], (await api.Store.GetStateAsync()).Services.Select(s => s.Name));
    }

    [Fact]
    public async Task A_join_with_the_clusters_certificates_works_and_with_wrong_or_missing_ones_fails_saying_tls()
    {
        await using var api = await SecuredApi.StartAsync(Mtls(), _files.Directory);
        var joiner = ApiSecurity.Load(new ApiSecurityFiles { TlsCert = _files.Cert("mesh-n2"), TlsKey = _files.Key("mesh-n2"), TlsCa = _files.Ca }, hasTcpApi: false);

        var joined = new RemoteStore(Tcp(api.Https, joiner.JoinTls));
        var node = await joined.RegisterNodeAsync(new NodeSpec { Name = "mesh-n2", AdvertiseAddress = "198.18.0.12" });
        Assert.Equal("mesh-n2", node.Name);
        var before = await api.Store.GetStateAsync();

        foreach (var tls in new[] { Client(_files.OtherCert, _files.OtherKey, _files.Ca), ClientTls.Load("--tls-cert", null, "--tls-key", null, "--tls-ca", _files.Ca) })
        {
            var refused = new RemoteStore(Tcp(api.Https, tls));
            var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => refused.RegisterNodeAsync(new NodeSpec { Name = "mesh-n3", AdvertiseAddress = "198.18.0.13" }));
            Assert.True(e.Message.Contains("TLS with the store at https://127.0.0.1:", StringComparison.Ordinal), e.Message + " / " + (e.InnerException as HttpRequestException)?.HttpRequestError);
            Assert.Contains("--tls-cert", e.Message, StringComparison.Ordinal);
        }

        var distrustful = new RemoteStore(Tcp(api.Https, Client(_files.Cert("mesh-n2"), _files.Key("mesh-n2"), _files.OtherCa)));
        var untrusted = await Assert.ThrowsAsync<StoreUnavailableException>(() => distrustful.GetStateAsync());
        Assert.Contains("TLS with the store", untrusted.Message, StringComparison.Ordinal);

        Assert.Same(before, await api.Store.GetStateAsync());
    }

    [Fact]
    public async Task A_join_without_the_token_is_told_401_and_with_it_works()
    {
        var security = ApiSecurity.Load(new ApiSecurityFiles { TokenFile = _files.TokenFile }, hasTcpApi: true);
        await using var api = await SecuredApi.StartAsync(security, _files.Directory);

        var anonymous = new RemoteStore(Tcp(api.Http));
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => anonymous.RegisterNodeAsync(new NodeSpec { Name = "mesh-n2", AdvertiseAddress = "198.18.0.12" }));
        Assert.Contains("401", e.Message, StringComparison.Ordinal);
        Assert.Contains("--api-token-file", e.Message, StringComparison.Ordinal);
        Assert.Single((await api.Store.GetStateAsync()).Nodes);

        var joined = new RemoteStore(Tcp(api.Http, token: security.Token));
        await joined.RegisterNodeAsync(new NodeSpec { Name = "mesh-n2", AdvertiseAddress = "198.18.0.12" });
        Assert.Equal(2, (await api.Store.GetStateAsync()).Nodes.Count);
    }

    [Fact]
    public void The_token_is_compared_whole_and_needs_the_bearer_scheme()
    {
        var token = BearerToken.FromValue(_files.Token);
        Assert.True(token.Matches("Bearer " + _files.Token));
        Assert.True(token.Matches("bearer " + _files.Token));
        Assert.False(token.Matches(_files.Token));
        Assert.False(token.Matches("Bearer " + _files.Token + "x"));
        Assert.False(token.Matches("Bearer " + _files.Token[..16]));
        Assert.False(token.Matches("Bearer "));
        Assert.False(token.Matches(null));
    }
}
