using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>
/// Values written into etcd by anyone but Mesh (an attacker with etcd access, a broken tool) are validated like API
/// requests when read: each bad one is set aside and counted, and every daemon keeps converging on the rest.
/// </summary>
[RequiresEtcd]
public sealed class EtcdStoredObjectTests : IClassFixture<EtcdFixture>, IDisposable
{
    private readonly EtcdFixture fixture;
    private readonly string _prefix = $"/mesh-forged-{Guid.NewGuid():N}/";
    private readonly Meter _meter = new("Mesh");
    private readonly RejectedCounter _rejected;

    public EtcdStoredObjectTests(EtcdFixture fixture)
    {
        this.fixture = fixture;
        _rejected = new RejectedCounter(_meter);
    }

    public void Dispose()
    {
        _rejected.Dispose();
        _meter.Dispose();
    }

    private EtcdStore Daemon(string node) =>
        new(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = _prefix, Node = node }, metrics: new StoreMetrics(_meter));

    /// <summary>A healthy cluster: node n1, services web (8080) and api (9090), two tasks of web and one of api.</summary>
    private async Task<EtcdStore> SeedAsync()
    {
        var store = Daemon("n1");
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await store.CreateServiceAsync(new ServiceSpec { Name = "api", Ports = [new PublishedPort(9090, 90)] });
        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        await store.AddTaskAsync(new TaskSpec { Service = "api", Node = "n1" });
        return store;
    }

    [StoreFact]
    public async Task A_newline_in_an_address_is_set_aside_and_the_rest_converges()
    {
        await using var store = await SeedAsync();
        var web1 = (await store.GetStateAsync()).Tasks.Single(t => t.Name == "web.1");
        var forged = JsonSerializer.Serialize(web1 with
        {
            Addresses = new Dictionary<string, string> { ["ingress"] = web1.Addresses["ingress"] + "\n-A INPUT -j ACCEPT" },
        }, MeshJson.Options);
        await PutRawAsync("tasks/web/web.1", Encoding.UTF8.GetBytes(forged));

        await AssertRestConvergesAsync(store, without: "task web.1");
        Assert.True(_rejected.Count("task") > 0);
    }

    [StoreFact]
    public async Task An_nft_include_in_a_value_is_set_aside_and_the_rest_converges()
    {
        await using var store = await SeedAsync();
        var api = (await store.GetStateAsync()).Services.Single(s => s.Name == "api");
        // Pasted into `nft -f` input, this would make nft read (and echo in its error) the named file.
        var forged = JsonSerializer.Serialize(api with { Vips = new Dictionary<string, string> { ["ingress"] = "include \"/etc/shadow\"" } }, MeshJson.Options);
        await PutRawAsync("services/api", Encoding.UTF8.GetBytes(forged));
        var forgedNetwork = """{"name":"evil","subnet":"10.9.0.0/24\ninclude \"/etc/shadow\"","vni":5000}""";
        await PutRawAsync("networks/evil", Encoding.UTF8.GetBytes(forgedNetwork));

        var state = await store.GetStateAsync();
        Assert.DoesNotContain(state.Services, s => s.Name == "api");
        Assert.DoesNotContain(state.Networks, n => n.Name == "evil");
        Assert.DoesNotContain("shadow", JsonSerializer.Serialize(state, MeshJson.Options), StringComparison.Ordinal);
        // api's task no longer has a service: it is set aside with it; web and its tasks are untouched.
        Assert.Equal(["web.1", "web.2"], state.Tasks.Select(t => t.Name));
        Assert.Equal(["web"], state.Services.Select(s => s.Name));
        Assert.True(_rejected.Count("service") > 0);
        Assert.True(_rejected.Count("network") > 0);

        // Writes keep working and leave the forged keys alone (set aside, not silently deleted).
        await store.CreateServiceAsync(new ServiceSpec { Name = "new", Ports = [new PublishedPort(7070, 70)] });
        Assert.Contains("new", (await store.GetStateAsync()).Services.Select(s => s.Name));
        Assert.Equal(forged, Encoding.UTF8.GetString(await GetRawAsync("services/api")));
    }

    [StoreFact]
    public async Task An_undecodable_key_is_set_aside_and_every_node_still_converges()
    {
        await using var store = await SeedAsync();
        await PutRawAsync("services/garbage", [0xff, 0xfe, (byte)'{', 0x00]);
        await PutRawAsync("tasks/web/web.7", Encoding.UTF8.GetBytes("""{"name":"web.7","service":"web","node":"n1","addresses":{"ingress":42}}"""));
        await PutRawAsync("nodes/n9", Encoding.UTF8.GetBytes("not json at all"));
        // A value whose name is not its key's: written back it would land elsewhere.
        await PutRawAsync("nodes/n8", Encoding.UTF8.GetBytes("""{"name":"n1","advertiseAddress":"198.18.0.18","ingressSandboxIp":"10.255.0.60"}"""));

        await AssertRestConvergesAsync(store, without: null);
        await using var other = Daemon("n2"); // another node's daemon converges too, and can register
        await other.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        var seen = await other.GetStateAsync();
        Assert.Equal(["n1", "n2"], seen.Nodes.Select(n => n.Name));
        Assert.Equal(["web.1", "web.2", "api.1", "api.2"], seen.Tasks.Select(t => t.Name)); // api.2: added by the convergence check
        Assert.True(_rejected.Count("service") > 0);
        Assert.True(_rejected.Count("task") > 0);
        Assert.True(_rejected.Count("node") >= 2);
    }

    [StoreFact]
    public async Task Two_forged_services_on_one_port_or_mark_leave_the_first_one_serving()
    {
        await using var store = await SeedAsync();
        var state = await store.GetStateAsync();
        var web = state.Services.Single(s => s.Name == "web");
        // A later object claiming web's published port and mark (a dataplane map would refuse the duplicate key).
        var copy = web with { Name = "copy", Aliases = [], Vips = new Dictionary<string, string> { ["ingress"] = "10.255.0.200" } };
        await PutRawAsync("services/copy", Encoding.UTF8.GetBytes(JsonSerializer.Serialize(copy, MeshJson.Options)));

        var after = await store.GetStateAsync();
        Assert.Equal(["web", "api"], after.Services.Select(s => s.Name));
        Assert.Equal(web.Ports, after.Services[0].Ports);
        Assert.True(_rejected.Count("service") > 0);
    }

    /// <summary>Everything seeded is still there (but <paramref name="without"/>), and the store still takes writes.</summary>
    private static async Task AssertRestConvergesAsync(EtcdStore store, string? without)
    {
        var state = await store.GetStateAsync();
        var expectedTasks = new[] { "web.1", "web.2", "api.1" }.Where(t => without != $"task {t}");
        Assert.Equal(expectedTasks, state.Tasks.Select(t => t.Name));
        Assert.Equal(["web", "api"], state.Services.Select(s => s.Name));
        Assert.Equal(["n1"], state.Nodes.Select(n => n.Name));
        Assert.All(state.Tasks, t => Assert.Equal(TaskState.Running, t.State));

        var added = await store.AddTaskAsync(new TaskSpec { Service = "api", Node = "n1" });
        Assert.Contains(added.Name, (await store.GetStateAsync()).Tasks.Select(t => t.Name));
    }

    private async Task PutRawAsync(string key, byte[] value)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsJsonAsync(
            new Uri(fixture.Etcd!.ClientUrl, "v3/kv/put"),
            new { key = Convert.ToBase64String(Encoding.UTF8.GetBytes(_prefix + key)), value = Convert.ToBase64String(value) });
        response.EnsureSuccessStatusCode();
    }

    private async Task<byte[]> GetRawAsync(string key)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsJsonAsync(new Uri(fixture.Etcd!.ClientUrl, "v3/kv/range"), new { key = Convert.ToBase64String(Encoding.UTF8.GetBytes(_prefix + key)) });
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return Convert.FromBase64String(doc.RootElement.GetProperty("kvs")[0].GetProperty("value").GetString()!);
    }
}
