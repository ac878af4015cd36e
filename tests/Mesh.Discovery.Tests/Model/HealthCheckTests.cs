using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Tests.Model;

public sealed class HealthCheckTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-health-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly HealthCheck Good = new() { Path = "/healthz?deep=1", IntervalMs = 1000, TimeoutMs = 500, HealthyThreshold = 3, UnhealthyThreshold = 1 };

    [Theory]
    [InlineData("healthz", "healthCheck.path")]
    [InlineData("/a b", "healthCheck.path")]
    [InlineData("/x\r\nHost: evil", "healthCheck.path")]
    [InlineData("", "healthCheck.path")]
    public void A_bad_path_is_refused_naming_the_field(string path, string field) =>
        Assert.Equal(field, Assert.Throws<ValidationException>(() => HealthCheck.Normalize(Good with { Path = path }, f => "healthCheck." + f)).Field);

    [Fact]
    public void Intervals_timeouts_and_thresholds_out_of_range_are_refused_naming_the_field()
    {
        static string FieldOf(HealthCheck check) => Assert.Throws<ValidationException>(() => HealthCheck.Normalize(check, f => f)).Field;
        Assert.Equal("intervalMs", FieldOf(Good with { IntervalMs = 100 }));
        Assert.Equal("intervalMs", FieldOf(Good with { IntervalMs = 3_600_001 }));
        Assert.Equal("timeoutMs", FieldOf(Good with { TimeoutMs = 1001 }));
        Assert.Equal("timeoutMs", FieldOf(Good with { TimeoutMs = 10 }));
        Assert.Equal("healthyThreshold", FieldOf(Good with { HealthyThreshold = 0 }));
        Assert.Equal("unhealthyThreshold", FieldOf(Good with { UnhealthyThreshold = 11 }));
        Assert.Equal("path", FieldOf(Good with { Kind = HealthCheckKind.Tcp }));
        Assert.Equal("kind", FieldOf(Good with { Kind = (HealthCheckKind)7 }));
        Assert.Same(Good, HealthCheck.Normalize(Good, f => f));
    }

    [Fact]
    public void The_probe_port_is_the_lowest_tcp_target_of_ports_and_routes()
    {
        Assert.Equal(80, HealthCheck.ProbePort([new PublishedPort(8080, 8000), new PublishedPort(53, 53, TransportProtocol.Udp)], [ServiceRoute.Parse("a.test/=80")]));
        Assert.Null(HealthCheck.ProbePort([new PublishedPort(53, 53, TransportProtocol.Udp)], []));
    }

    [Fact]
    public async Task A_service_keeps_its_check_through_the_store_a_restart_and_json_and_a_bad_one_changes_nothing()
    {
        var store = new EmbeddedStore(_dir, NullLogger<EmbeddedStore>.Instance);
        var created = await store.CreateServiceAsync(new ServiceSpec { Name = "shop", Routes = [ServiceRoute.Parse("shop.test/=80")], HealthCheck = Good });
        Assert.Equal(Good, created.HealthCheck);

        var before = await store.GetStateAsync();
        var udpOnly = await Assert.ThrowsAsync<ValidationException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "dns", Ports = [new PublishedPort(53, 53, TransportProtocol.Udp)], HealthCheck = new HealthCheck { Kind = HealthCheckKind.Tcp } }));
        Assert.Equal("healthCheck", udpOnly.Field);
        var badTimeout = await Assert.ThrowsAsync<ValidationException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], HealthCheck = Good with { TimeoutMs = 5000 } }));
        Assert.Equal("healthCheck.timeoutMs", badTimeout.Field);
        Assert.Same(before, await store.GetStateAsync());

        var reopened = (await new EmbeddedStore(_dir, NullLogger<EmbeddedStore>.Instance).GetStateAsync()).Services.Single();
        Assert.Equal(Good, reopened.HealthCheck);

        var json = JsonSerializer.Serialize(reopened, MeshJson.Options);
        Assert.Contains("\"healthCheck\":{\"kind\":\"http\",\"path\":\"/healthz?deep=1\",\"intervalMs\":1000,\"timeoutMs\":500,\"healthyThreshold\":3,\"unhealthyThreshold\":1}", json, StringComparison.Ordinal);
        Assert.Equal(Good, JsonSerializer.Deserialize<ClusterService>(json, MeshJson.Options)!.HealthCheck);
    }

    [Fact]
    public void A_stored_service_with_a_bad_check_is_refused_on_read()
    {
        var state = StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], HealthCheck = Good }).State;
        var tampered = state.Services.Single() with { HealthCheck = Good with { Path = "/x y" } };
        Assert.Equal("healthCheck.path", Assert.Throws<ValidationException>(() => ObjectRules.Service(tampered, ReservedPorts.Default)).Field);
    }
}
