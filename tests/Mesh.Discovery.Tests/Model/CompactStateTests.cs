using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Model;

/// <summary>
/// The state's per-task objects kept small (issue 12, the daemon's memory at 10,000 services): addresses as a
/// <see cref="StringMap"/>, names shared across tasks; read and written as the dictionaries were.
/// </summary>
public class CompactStateTests
{
    [Fact]
    public void Addresses_read_from_json_are_a_string_map_with_the_ingress_key_shared_and_written_back_alike()
    {
        const string json = """{"name":"web.1","service":"web","node":"n1","addresses":{"ingress":"10.255.0.7","backend":"10.0.1.3"}}""";
        var task = JsonSerializer.Deserialize<ServiceTask>(json, MeshJson.Options)!;

        var addresses = Assert.IsType<StringMap>(task.Addresses);
        Assert.Equal(["ingress", "backend"], addresses.Keys);
        Assert.Same(OverlayNetwork.IngressName, addresses.Keys.First());
        Assert.Equal("10.0.1.3", addresses["backend"]);
        Assert.False(addresses.ContainsKey("Backend")); // ordinal, as the dictionary was
        Assert.Throws<KeyNotFoundException>(() => addresses["other"]);
        Assert.Contains("\"addresses\":{\"ingress\":\"10.255.0.7\",\"backend\":\"10.0.1.3\"}", JsonSerializer.Serialize(task, MeshJson.Options), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"ingress":"10.255.0.7","ingress":"10.255.0.8"}""", "given twice")]
    [InlineData("""{"ingress":7}""", "must be a string")]
    [InlineData("""["10.255.0.7"]""", "expected an object")]
    public void Bad_addresses_are_refused_naming_what_is_wrong(string addresses, string problem)
    {
        var json = $$"""{"name":"web.1","service":"web","node":"n1","addresses":{{addresses}}}""";
        var e = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<ServiceTask>(json, MeshJson.Options));
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_dictionary_given_in_code_is_held_as_a_string_map_with_the_same_pairs()
    {
        var task = new ServiceTask { Name = "web.1", Service = "web", Node = "n1", Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.7" } };
        var service = new ClusterService { Name = "web", Vips = new Dictionary<string, string>() };

        Assert.Equal([new KeyValuePair<string, string>("ingress", "10.255.0.7")], Assert.IsType<StringMap>(task.Addresses));
        Assert.Same(StringMap.Empty, service.Vips);
    }

    [Fact]
    public void Shared_names_make_every_task_use_its_service_and_node_string_and_change_nothing_else()
    {
        // Strings built at run time, as JSON reading makes them: equal text, other objects.
        var state = new ClusterState
        {
            Nodes = [new ClusterNode { Name = "n1", AdvertiseAddress = "198.18.0.1" }],
            Services = [new ClusterService { Name = "web" }],
            Tasks = [
                new ServiceTask { Name = "web.1", Service = new string("web".AsSpan()), Node = new string("n1".AsSpan()) },
                new ServiceTask { Name = "web.2", Service = new string("web".AsSpan()), Node = "gone" },
            ],
        };

        var shared = state.WithSharedNames();

        Assert.All(shared.Tasks, t => Assert.Same(state.Services[0].Name, t.Service));
        Assert.Same(state.Nodes[0].Name, shared.Tasks[0].Node);
        Assert.Equal("gone", shared.Tasks[1].Node); // a node the state does not hold keeps its own text
        Assert.Equal(state.Tasks.Select(t => (t.Name, t.Service, t.Node)), shared.Tasks.Select(t => (t.Name, t.Service, t.Node)));
        Assert.Same(shared, shared.WithSharedNames()); // nothing left to share: the same state
    }
}
