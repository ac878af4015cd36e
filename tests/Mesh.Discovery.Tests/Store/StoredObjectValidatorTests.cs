using System.Diagnostics.Metrics;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Tests.Store;

/// <summary>The rules every stored object is re-checked with, on its own and against the others.</summary>
public sealed class StoredObjectValidatorTests : IDisposable
{
    private readonly Meter _meter = new("Mesh");
    private readonly RejectedCounter _rejected;
    private readonly StoredObjectValidator _validator;

    public StoredObjectValidatorTests()
    {
        _rejected = new RejectedCounter(_meter);
        _validator = new StoredObjectValidator(NullLogger.Instance, new StoreMetrics(_meter), ReservedPorts.Default, "test");
    }

    public void Dispose()
    {
        _rejected.Dispose();
        _meter.Dispose();
    }

    private static ClusterState Healthy()
    {
        var s = ClusterState.Empty;
        s = StateTransitions.CreateNetwork(s, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        s = StateTransitions.RegisterNode(s, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Networks = ["appnet"], Aliases = ["frontend"] }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "api", Ports = [new PublishedPort(9090, 90)] }).State;
        s = StateTransitions.AddTask(s, new TaskSpec { Service = "web", Node = "n1", NetnsPath = "/run/netns/w1" }).State;
        s = StateTransitions.AddTask(s, new TaskSpec { Service = "api", Node = "n1" }).State;
        return s;
    }

    [Fact]
    public void A_valid_state_passes_as_the_same_instance()
    {
        var state = Healthy();
        Assert.Same(state, _validator.Screen(state));
        Assert.Equal(0, _rejected.Total);
    }

    public static TheoryData<string, string> BadServices => new()
    {
        { """{"name":"web","aliases":["a","b","c","bad alias"],"firewallMark":256}""", "aliases[3]" },
        { """{"name":"web","ports":[{"published":8080,"target":80},{"published":22,"target":22}],"firewallMark":256}""", "ports[1].published" },
        { """{"name":"web","vips":{"ingress":"10.255.0.3 counter accept"},"firewallMark":256}""", "vips.ingress" },
        { """{"name":"web","vips":{"ingress":"010.255.0.3"},"firewallMark":256}""", "vips.ingress" },
        { """{"name":"web","firewallMark":16777216}""", "firewallMark" },
        { """{"name":"web","networks":["appnet","APPNET"],"firewallMark":256}""", "networks[1]" },
    };

    [Theory]
    [MemberData(nameof(BadServices))]
    public void A_stored_service_failing_a_rule_is_refused_naming_the_field(string json, string field)
    {
        var service = System.Text.Json.JsonSerializer.Deserialize<ClusterService>(json, StoredObjectValidator.ReadOptions)!;
        var e = Assert.Throws<ValidationException>(() => ObjectRules.Service(service, ReservedPorts.Default));
        Assert.Equal(field, e.Field);
        Assert.Null(_validator.Decode<ClusterService>("services/web", json));
        Assert.Equal(1, _rejected.Count("service"));
    }

    [Fact]
    public void Objects_that_conflict_with_earlier_ones_are_set_aside_and_the_earlier_ones_kept()
    {
        var state = Healthy();
        var web = state.Services[0];
        var task = state.Tasks[0];
        var forged = state with
        {
            Networks = [.. state.Networks, new OverlayNetwork("twin", "10.0.2.0/24", 4097)], // appnet's VNI
            Services =
            [
                .. state.Services,
                web with { Name = "copy", Aliases = [], Ports = [new PublishedPort(7070, 70)], Vips = new Dictionary<string, string>() }, // web's mark
                web with { Name = "ghost", Aliases = [], Ports = [], Networks = ["nowhere"], FirewallMark = 0x300, Vips = new Dictionary<string, string>() },
            ],
            Tasks =
            [
                .. state.Tasks,
                task with { Name = "web.9", Addresses = new Dictionary<string, string> { ["ingress"] = task.Addresses["ingress"] } }, // web.1's address
                task with { Name = "web.8", Addresses = new Dictionary<string, string> { ["other"] = "10.0.9.9" } },
                task with { Name = "orphan.1", Service = "orphan", Addresses = new Dictionary<string, string>() },
            ],
        };

        var screened = _validator.Screen(forged);
        Assert.Equal(["ingress", "appnet"], screened.Networks.Select(n => n.Name));
        Assert.Equal(["web", "api"], screened.Services.Select(s => s.Name));
        Assert.Equal(["web.1", "api.1"], screened.Tasks.Select(t => t.Name));
        Assert.Equal(1, _rejected.Count("network"));
        Assert.Equal(2, _rejected.Count("service"));
        Assert.Equal(3, _rejected.Count("task"));
    }

    [Fact]
    public void Control_characters_in_a_stored_path_are_refused()
    {
        var task = Healthy().Tasks[0] with { NetnsPath = "/run/netns/w1\n-A INPUT -j ACCEPT" };
        var e = Assert.Throws<ValidationException>(() => ObjectRules.Task(task));
        Assert.Equal("netnsPath", e.Field);
        Assert.DoesNotContain("\n", e.Message, StringComparison.Ordinal);
    }
}
