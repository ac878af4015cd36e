using System.Diagnostics.Metrics;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Tests.Store;

/// <summary>
/// A joined daemon reads the holder's state over plain HTTP: whatever the holder (or anything in between) sends is
/// validated object by object, exactly like etcd's values. The holder here is a real HTTP server sending forged JSON.
/// </summary>
public sealed class RemoteStoreValidationTests : IDisposable
{
    private readonly JsonTestServer _holder;
    private readonly Meter _meter = new("Mesh");
    private readonly RejectedCounter _rejected;
    private readonly Uri _url;
    private string _state = "{}";
    private string _registration = "{}";

    public RemoteStoreValidationTests()
    {
        _rejected = new RejectedCounter(_meter);
        _holder = new JsonTestServer(request => Task.FromResult(request.Url!.AbsolutePath == "/v1/nodes" ? _registration : _state));
        _url = _holder.Url;
    }

    public void Dispose()
    {
        _holder.Dispose();
        _rejected.Dispose();
        _meter.Dispose();
    }

    private RemoteStore Joined() => new(new HttpClient { BaseAddress = _url }, NullLogger<RemoteStore>.Instance, new StoreMetrics(_meter));

    /// <summary>A valid state as a real holder would send it.</summary>
    private static ClusterState Genuine()
    {
        var state = ClusterState.Empty;
        state = StateTransitions.RegisterNode(state, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Ports = [new PublishedPort(9090, 90)] }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" }).State;
        return state with { Revision = 7 };
    }

    [Fact]
    public async Task A_genuine_state_comes_through_unchanged()
    {
        var genuine = Genuine();
        _state = JsonSerializer.Serialize(genuine, MeshJson.Options);
        var seen = await Joined().GetStateAsync();
        Assert.Equal(_state, JsonSerializer.Serialize(seen, MeshJson.Options));
        Assert.Equal(0, _rejected.Total);
    }

    [Fact]
    public async Task Forged_objects_from_the_holder_are_set_aside_and_the_rest_is_used()
    {
        var genuine = Genuine();
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(genuine, MeshJson.Options));
        var json = doc.RootElement.GetRawText()
            .Replace("\"10.255.0.6\"", "\"10.255.0.6\\nflush ruleset\"", StringComparison.Ordinal) // web.2's address
            .Replace("\"name\":\"api\"", "\"name\":\"api\\\"; include \\\"/etc/shadow\"", StringComparison.Ordinal);
        // An element that does not decode at all, and the ingress network redefined.
        json = json.Replace("\"tasks\":[", "\"tasks\":[{\"name\":[1,2]},", StringComparison.Ordinal)
            .Replace("\"subnet\":\"10.255.0.0/16\"", "\"subnet\":\"0.0.0.0/0\"", StringComparison.Ordinal);
        Assert.NotEqual(doc.RootElement.GetRawText(), json);
        _state = json;

        var seen = await Joined().GetStateAsync();
        Assert.Equal(7, seen.Revision);
        Assert.Equal(["web"], seen.Services.Select(s => s.Name));
        Assert.Equal(["web.1"], seen.Tasks.Select(t => t.Name)); // web.2 forged, and the undecodable element
        Assert.Equal([OverlayNetwork.Ingress], seen.Networks);
        Assert.Equal(["n1"], seen.Nodes.Select(n => n.Name));
        Assert.True(_rejected.Count("task") >= 2);
        Assert.True(_rejected.Count("service") >= 1);
    }

    [Fact]
    public async Task What_the_holder_sends_again_unchanged_is_the_same_object_and_what_changed_is_decoded_anew()
    {
        var joined = Joined();
        _state = JsonSerializer.Serialize(Genuine(), MeshJson.Options);
        var first = await joined.GetStateAsync();

        // The next revision: api's published port changed, web.2 gone; everything else byte for byte the same.
        var next = Genuine() with { Revision = 8 };
        next = next with { Tasks = [.. next.Tasks.Where(t => t.Name != "web.2")] };
        _state = JsonSerializer.Serialize(next, MeshJson.Options).Replace("9090", "9091", StringComparison.Ordinal);
        var second = await joined.GetStateAsync();

        Assert.Equal(8, second.Revision);
        Assert.Same(first.Services.Single(s => s.Name == "web"), second.Services.Single(s => s.Name == "web"));
        Assert.Same(first.Nodes.Single(), second.Nodes.Single());
        Assert.Same(first.Tasks.Single(t => t.Name == "web.1"), second.Tasks.Single());
        var api = second.Services.Single(s => s.Name == "api");
        Assert.NotSame(first.Services.Single(s => s.Name == "api"), api);
        Assert.Equal(9091, Assert.Single(api.Ports).Published);

        // A task sent again keeps the name strings it shares with its service and node: no copy per fetch.
        Assert.Same(second.Services.Single(s => s.Name == "web").Name, second.Tasks.Single().Service);
        var third = await joined.GetStateAsync();
        Assert.Same(second.Tasks.Single(), third.Tasks.Single());
        Assert.Equal(0, _rejected.Total);
    }

    [Fact]
    public async Task An_object_that_failed_its_checks_is_checked_again_when_sent_again()
    {
        var joined = Joined();
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(Genuine(), MeshJson.Options));
        _state = doc.RootElement.GetRawText().Replace("\"10.255.0.6\"", "\"10.255.0.6\\nflush ruleset\"", StringComparison.Ordinal);
        Assert.Equal(["web.1"], (await joined.GetStateAsync()).Tasks.Select(t => t.Name));
        var rejected = _rejected.Count("task");
        Assert.Equal(["web.1"], (await joined.GetStateAsync()).Tasks.Select(t => t.Name));
        Assert.True(_rejected.Count("task") > rejected, "the forged task was not checked again");
    }

    [Fact]
    public async Task A_forged_registration_answer_is_not_used_to_program_the_sandbox()
    {
        _registration = """{"name":"n1","advertiseAddress":"198.18.0.11","ingressSandboxIp":"10.255.0.2/0 -j ACCEPT"}""";
        await Assert.ThrowsAsync<StoreUnavailableException>(() => Joined().RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }));
        _registration = """{"name":"n1","advertiseAddress":"198.18.0.11","ingressSandboxIp":"10.255.0.2"}""";
        Assert.Equal("10.255.0.2", (await Joined().RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" })).IngressSandboxIp);
    }
}
