using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Api;

public sealed class ApiTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private InMemoryApi _api = null!;

    private EmbeddedStore _store => _api.Store;

    private HttpClient _http => _api.Http;

    public async Task InitializeAsync() => _api = await InMemoryApi.StartAsync();

    public async Task DisposeAsync() => await _api.DisposeAsync();

    public static TheoryData<string, string, string> BadRequests => new()
    {
        { "/v1/services", "", "body" },
        { "/v1/services", "{", "body" },
        { "/v1/services", "null", "body" },
        { "/v1/services", "[]", "body" },
        { "/v1/services", "{\"name\":42}", "name" },
        { "/v1/services", "{\"name\":\"x\",\"unknown\":1}", "unknown" },
        { "/v1/tasks", "{\"\":1}", "body" }, // an unknown property named "": the fuzz run saw an empty field
        { "/v1/services", "{\"name\":\"x\",\"mode\":\"round-robin\"}", "mode" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":[{\"published\":\"8080\",\"target\":80}]}", "ports[0].published" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":[{\"published\":8080.5,\"target\":80}]}", "ports[0].published" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":[{\"published\":70000,\"target\":80}]}", "ports[0].published" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":[{\"published\":81,\"target\":80,\"protocol\":\"sctp\"}]}", "ports[0].protocol" },
        { "/v1/services", "{\"name\":\"under_score\"}", "name" },
        { "/v1/services", "{\"name\":\"x\",\"networks\":[\"missing\"]}", "networks[0]" },
        { "/v1/services", "{\"name\":\"x\",\"aliases\":\"one\"}", "aliases" },
        { "/v1/services", "{\"name\":\"x\",\"aliases\":[\"ok\",\"not ok\"]}", "aliases[1]" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"aliases\":[\"tasks.web\"]}", "aliases[0]" },
        { "/v1/tasks", "{\"service\":\"web\"}", "node" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"addresses\":{\"ingress\":\"10.255.0.999\"}}", "addresses.ingress" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"addresses\":{\"ingress\":\"192.168.1.1\"}}", "addresses.ingress" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"../x\"}", "netnsPath" },
        // Issue 9: the host's namespace in every spelling, anything outside the namespace directories, non-canonical paths.
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/proc/1/ns/net\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/proc/self/ns/net\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/proc//1/ns/net\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/proc/01/ns/net\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/proc/thread-self/ns/net\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/etc/shadow\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/run/netns/../../proc/1/ns/net\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/run/netns/a/b\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/run/netns/x\\n\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"resolvConfPath\":\"/etc/shadow\"}", "resolvConfPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"resolvConfPath\":\"/etc/netns/x/../../shadow\"}", "resolvConfPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"resolvConfPath\":\"/etc/netns//resolv.conf\"}", "resolvConfPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"resolvConfPath\":\"/etc/netns\"}", "resolvConfPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/run/netns/a\\rb\"}", "netnsPath" }, // found by the fuzz run
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"netnsPath\":\"/run/netns/a\\nb\"}", "netnsPath" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"resolvConfPath\":\"/run/netns/x/..\"}", "resolvConfPath" },
        { "/v1/tasks", "{\"name\":\"bad name\",\"service\":\"web\",\"node\":\"n1\"}", "name" },
        { "/v1/nodes", "{\"name\":\"n2\",\"advertiseAddress\":\"not-an-ip\"}", "advertiseAddress" },
        { "/v1/nodes", "{\"name\":\"n2\",\"advertiseAddress\":\"::1\"}", "advertiseAddress" },
        { "/v1/networks", "{\"name\":\"appnet\",\"subnet\":\"10.0.1.0/33\",\"vni\":4097}", "subnet" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_requests_get_400_naming_the_field_and_change_nothing(string path, string body, string field)
    {
        var before = await _store.GetStateAsync();
        using var response = await _http.PostAsync(new Uri(path, UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await response.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options);
        Assert.Equal(field, error!.Field);
        Assert.Same(before, await _store.GetStateAsync());
    }

    [Theory]
    [InlineData("/run/netns/web-1", "/etc/netns/web-1/resolv.conf")]
    [InlineData("/var/run/netns/cni-3f2a", "/run/mesh/tasks/web.1/resolv.conf")]
    [InlineData("/proc/4242/ns/net", null)]
    public async Task Namespace_and_resolv_conf_paths_of_the_allowed_shapes_are_accepted(string netns, string? resolvConf)
    {
        using var response = await _http.PostAsJsonAsync(new Uri("/v1/tasks", UriKind.Relative), new TaskSpec { Service = "web", Node = "n1", NetnsPath = netns, ResolvConfPath = resolvConf }, MeshJson.Options);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var task = Assert.Single((await _store.GetStateAsync()).Tasks);
        Assert.Equal((netns, resolvConf), (task.NetnsPath, task.ResolvConfPath));
    }

    [Fact]
    public async Task Conflicts_are_409_and_missing_objects_404_and_change_nothing()
    {
        var before = await _store.GetStateAsync();
        using var dup = await _http.PostAsJsonAsync("/v1/services", new ServiceSpec { Name = "web" }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.Conflict, dup.StatusCode);
        Assert.Contains("already exists", (await dup.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Error, StringComparison.Ordinal);
        using var port = await _http.PostAsJsonAsync("/v1/services", new ServiceSpec { Name = "api", Ports = [new PublishedPort(8080, 1)] }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.Conflict, port.StatusCode);
        using var gone = await _http.DeleteAsync(new Uri("/v1/tasks/web.9", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        using var noService = await _http.GetAsync(new Uri("/v1/services/nope", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, noService.StatusCode);
        using var badQuery = await _http.GetAsync(new Uri("/v1/watch?after=abc", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, badQuery.StatusCode);
        Assert.Same(before, await _store.GetStateAsync());
    }

    [Fact]
    public async Task Errors_echo_client_input_without_control_characters()
    {
        // Found by the API fuzz run: a NUL in a query parameter came back raw in the error message.
        using var query = await _http.GetAsync(new Uri("/v1/watch?after=%00%0A1", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, query.StatusCode);
        var error = (await query.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!;
        Assert.Equal("after", error.Field);
        Assert.DoesNotContain(error.Error, char.IsControl);
        Assert.Contains("\\x00\\x0a1", error.Error, StringComparison.Ordinal);

        // ... and a name from the URL in a 404 (the store's message quotes it as given).
        using var missing = await _http.DeleteAsync(new Uri("/v1/services/web%09", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.DoesNotContain((await missing.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Error, char.IsControl);
    }

    [Fact]
    public async Task A_joined_daemon_sees_the_holders_state_and_errors_through_the_remote_store()
    {
        var remote = new RemoteStore(_http);
        var task = await remote.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        Assert.Equal("web.1", task.Name);
        Assert.Equal((await _store.GetStateAsync()).Revision, (await remote.GetStateAsync()).Revision);
        var e = await Assert.ThrowsAsync<ValidationException>(() => remote.CreateServiceAsync(new ServiceSpec { Name = "-x" }));
        Assert.Equal("name", e.Field);
        await Assert.ThrowsAsync<ConflictException>(() => remote.CreateServiceAsync(new ServiceSpec { Name = "web" }));
        var watch = await remote.WatchAsync(0, TimeSpan.FromSeconds(1));
        Assert.Equal(3, watch.Changes.Count);
        await remote.RemoveTaskAsync("web.1");
        Assert.Empty((await _store.GetStateAsync()).Tasks);
    }

    [Fact]
    public async Task A_watch_asked_for_the_state_answers_a_change_with_the_state_after_it()
    {
        var before = (await _store.GetStateAsync()).Revision;
        var watch = _http.GetAsync(new Uri($"/v1/watch?after={before}&timeoutMs=10000&state=1", UriKind.Relative));
        await _store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        using var answered = await watch;
        var answer = (await answered.Content.ReadFromJsonAsync<WatchAnswer>(MeshJson.Options))!;
        Assert.Equal(before + 1, answer.Revision);
        Assert.Equal(answer.Revision, answer.State!.Revision);
        Assert.Equal(["web.1"], answer.State.Tasks.Select(t => t.Name));
        Assert.Single(answer.Changes);

        // Without a change the answer carries no state; without state=1 it is the plain watch answer.
        using var quiet = await _http.GetAsync(new Uri($"/v1/watch?after={answer.Revision}&timeoutMs=100&state=1", UriKind.Relative));
        var none = (await quiet.Content.ReadFromJsonAsync<WatchAnswer>(MeshJson.Options))!;
        Assert.Equal(answer.Revision, none.Revision);
        Assert.Null(none.State);
        using var plain = await _http.GetAsync(new Uri($"/v1/watch?after={before}&timeoutMs=100", UriKind.Relative));
        Assert.DoesNotContain("\"state\"", await plain.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The joined daemon's store takes the state from the answer: its loops' read is the holder's state.
        IClusterStore remote = new RemoteStore(_http);
        await remote.GetStateAsync(before);
        var seen = await remote.WatchAsync(before, TimeSpan.FromSeconds(1));
        Assert.Equal(answer.Revision, seen.Revision);
        Assert.Equal(answer.State.Tasks.Select(t => t.Name), (await remote.GetStateAsync(seen.Revision)).Tasks.Select(t => t.Name));

        using var bad = await _http.GetAsync(new Uri("/v1/watch?after=1&state=2", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("state", (await bad.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Field);
    }

    internal static StringContent JsonBody(string json) => new(json, Encoding.UTF8, "application/json");

    internal static string Aliases(int count) =>
        "{\"name\":\"many\",\"aliases\":[" + string.Join(',', Enumerable.Range(0, count).Select(i => $"\"a{i}\"")) + "]}";

    internal static string Ports(int first, int count, bool udpToo) =>
        "{\"name\":\"ports\",\"ports\":[" + string.Join(',', Enumerable.Range(first, count).SelectMany(p => udpToo
            ? new[] { $"{{\"published\":{p},\"target\":{p}}}", $"{{\"published\":{p},\"target\":{p},\"protocol\":\"udp\"}}" }
            : [$"{{\"published\":{p},\"target\":80}}"])) + "]}";

    [Fact]
    public async Task Too_many_ports_or_aliases_within_the_body_cap_get_400_naming_the_field_fast()
    {
        var before = await _store.GetStateAsync();
        var requests = new[]
        {
            (Ports(20_000, Discovery.Model.Limits.MaxPortsPerService + 1, udpToo: false), "ports"),
            (Aliases(Discovery.Model.Limits.MaxAliasesPerObject + 1), "aliases"),
            ("{\"name\":\"ssh\",\"ports\":[{\"published\":22,\"target\":22}]}", "ports[0].published"),
            ("{\"name\":\"vxlan\",\"ports\":[{\"published\":4789,\"target\":4789,\"protocol\":\"udp\"}]}", "ports[0].published"),
        };
        // The best of five rounds must be under 100 ms: the first pays for JIT compilation, and a loaded machine
        // stalls single requests; what this catches is work that grows with the input (24 s was seen for 60,000
        // aliases when duplicate checks were quadratic), which no round escapes.
        var best = requests.ToDictionary(r => r.Item2 + r.Item1.Length, _ => TimeSpan.MaxValue);
        for (var round = 0; round < 5; round++)
        {
            foreach (var (body, field) in requests)
            {
                var clock = Stopwatch.StartNew();
                using var response = await _http.PostAsync(new Uri("/v1/services", UriKind.Relative), JsonBody(body));
                var elapsed = clock.Elapsed;
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                Assert.Equal(field, (await response.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Field);
                var key = field + body.Length;
                best[key] = elapsed < best[key] ? elapsed : best[key];
            }
        }

        foreach (var (body, field) in requests)
        {
            var elapsed = best[field + body.Length];
            output.WriteLine($"{field} ({body.Length:N0} bytes): 400 in {elapsed.TotalMilliseconds:0.0} ms (best of 5)");
            Assert.True(elapsed < TimeSpan.FromMilliseconds(100), $"{field}: took {elapsed.TotalMilliseconds} ms at best");
        }

        Assert.Same(before, await _store.GetStateAsync());
    }

    [Fact]
    public async Task A_node_can_be_removed_over_the_api_freeing_its_address_but_not_while_it_has_tasks()
    {
        using var registered = await _http.PostAsJsonAsync("/v1/nodes", new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" }, MeshJson.Options);
        var n2 = (await registered.Content.ReadFromJsonAsync<ClusterNode>(MeshJson.Options))!;
        await _store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n2" });

        using var busy = await _http.DeleteAsync(new Uri("/v1/nodes/n2", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Conflict, busy.StatusCode);
        Assert.Contains("web.1", (await busy.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Error, StringComparison.Ordinal);

        await _store.RemoveTaskAsync("web.1");
        using var removed = await _http.DeleteAsync(new Uri("/v1/nodes/n2", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.DoesNotContain("n2", (await _store.GetStateAsync()).Nodes.Select(n => n.Name));
        using var again = await _http.DeleteAsync(new Uri("/v1/nodes/n2", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);

        var n3 = await new RemoteStore(_http).RegisterNodeAsync(new NodeSpec { Name = "n3", AdvertiseAddress = "198.18.0.13" });
        Assert.Equal(n2.IngressSandboxIp, n3.IngressSandboxIp);
    }

    [Fact]
    public async Task Registering_past_the_node_cap_is_a_clear_409_and_the_api_keeps_answering()
    {
        for (var i = 1; i < Discovery.Model.Limits.MaxNodes; i++)
        {
            await _store.RegisterNodeAsync(new NodeSpec { Name = $"fake{i}", AdvertiseAddress = $"192.0.{i / 250}.{(i % 250) + 1}" });
        }

        var before = await _store.GetStateAsync();
        using var refused = await _http.PostAsJsonAsync("/v1/nodes", new NodeSpec { Name = "real", AdvertiseAddress = "198.18.0.99" }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("mesh node rm", (await refused.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Error, StringComparison.Ordinal);
        Assert.Same(before, await _store.GetStateAsync());
        using var info = await _http.GetAsync(new Uri("/v1/info", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, info.StatusCode);
    }
}
