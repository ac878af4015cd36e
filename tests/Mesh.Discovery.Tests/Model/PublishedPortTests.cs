using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Model;

/// <summary><c>--publish P:T[/proto][,mode=host|traffic=local|proxy=v2]</c>: parsed, shown, stored and checked alike everywhere.</summary>
public class PublishedPortTests
{
    [Theory]
    [InlineData("8080:80", PublishMode.Ingress, TrafficPolicy.Cluster, ProxyProtocol.None, "8080:80/tcp")]
    [InlineData("8081:80,mode=host", PublishMode.Host, TrafficPolicy.Cluster, ProxyProtocol.None, "8081:80/tcp,mode=host")]
    [InlineData("8082:80/udp,traffic=local", PublishMode.Ingress, TrafficPolicy.Local, ProxyProtocol.None, "8082:80/udp,traffic=local")]
    [InlineData("8083:80,proxy=v2", PublishMode.Ingress, TrafficPolicy.Cluster, ProxyProtocol.V2, "8083:80/tcp,proxy=v2")]
    [InlineData("8084:80/TCP,Mode=HOST,traffic=cluster", PublishMode.Host, TrafficPolicy.Cluster, ProxyProtocol.None, "8084:80/tcp,mode=host")]
    [InlineData("8085:80,mode=ingress,traffic=local", PublishMode.Ingress, TrafficPolicy.Local, ProxyProtocol.None, "8085:80/tcp,traffic=local")]
    public void Options_are_parsed_and_shown_in_the_form_they_are_written(string text, PublishMode mode, TrafficPolicy traffic, ProxyProtocol proxy, string shown)
    {
        var port = PublishedPort.Parse(text);
        Assert.Equal((mode, traffic, proxy), (port.Mode, port.Traffic, port.Proxy));
        Assert.Equal(shown, port.ToString());
        Assert.Equal(port, PublishedPort.Parse(port.ToString()));
    }

    [Theory]
    [InlineData("8081:80,mode=hots", "mode 'hots'", "not ingress or host")]
    [InlineData("8081:80,traffic=nearby", "traffic 'nearby'", "not cluster or local")]
    [InlineData("8081:80,proxy=v1", "proxy 'v1'", "not v2")]
    [InlineData("8081:80,speed=fast", "unknown option 'speed=fast'", "mode=ingress|host")]
    [InlineData("8081:80,mode=host,mode=host", "option 'mode' is given twice", "8081:80,mode=host,mode=host")]
    [InlineData("8081:80,mode=host,traffic=local", "traffic=local is meaningless", "mode=host")]
    [InlineData("8081:80,traffic=local,proxy=v2", "proxy=v2", "traffic=local")]
    [InlineData("8081:80,mode=host,proxy=v2", "proxy=v2", "mode=host")]
    [InlineData("8081,mode=host", "names one port", "8081:8081")]
    [InlineData("8081:80/sctp,mode=host", "unknown protocol 'sctp'", "tcp or udp")]
    public void A_bad_option_is_named_in_the_error(string text, string names, string alsoSays)
    {
        var e = Assert.Throws<ValidationException>(() => PublishedPort.Parse(text));
        Assert.Contains(names, e.Message, StringComparison.Ordinal);
        Assert.Contains(alsoSays, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_of_a_plain_port_is_as_before_and_options_are_written_only_when_set()
    {
        Assert.Equal("""{"published":8080,"target":80,"protocol":"tcp"}""", JsonSerializer.Serialize(new PublishedPort(8080, 80), MeshJson.Options));
        var host = PublishedPort.Parse("8081:80,mode=host");
        var json = JsonSerializer.Serialize(host, MeshJson.Options);
        Assert.Equal("""{"published":8081,"target":80,"protocol":"tcp","mode":"host"}""", json);
        Assert.Equal(host, JsonSerializer.Deserialize<PublishedPort>(json, MeshJson.Options));
        Assert.Equal(TrafficPolicy.Local, JsonSerializer.Deserialize<PublishedPort>("""{"published":1,"target":2,"traffic":"local"}""", MeshJson.Options)!.Traffic);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<PublishedPort>("""{"published":1,"target":2,"mode":"bogus"}""", MeshJson.Options));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<PublishedPort>("""{"published":1,"target":2,"mode":1}""", MeshJson.Options));
    }

    [Fact]
    public void The_store_refuses_meaningless_combinations_from_the_api_and_changes_nothing_and_takes_proxy_v2()
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        var both = new PublishedPort(8081, 80) { Mode = PublishMode.Host, Traffic = TrafficPolicy.Local };
        var e = Assert.Throws<ValidationException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "web2", Ports = [both] }));
        Assert.Equal("ports[0]", e.Field);
        Assert.Contains("meaningless", e.Message, StringComparison.Ordinal);

        var undefined = new PublishedPort(8081, 80) { Mode = (PublishMode)7 };
        Assert.Throws<ValidationException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "web2", Ports = [undefined] }));

        var (_, proxied) = StateTransitions.CreateService(state, new ServiceSpec { Name = "web4", Ports = [PublishedPort.Parse("8083:80,proxy=v2")] });
        Assert.Equal(ProxyProtocol.V2, Assert.Single(proxied.Ports).Proxy);

        var (created, service) = StateTransitions.CreateService(state, new ServiceSpec { Name = "web3", Ports = [PublishedPort.Parse("8082:80,traffic=local")] });
        Assert.Equal(TrafficPolicy.Local, Assert.Single(service.Ports).Traffic);
        Assert.Single(created.Services);

        // The same port number with another mode is still the same port on the node.
        var clash = Assert.Throws<ConflictException>(() => StateTransitions.CreateService(created, new ServiceSpec { Name = "web2", Ports = [PublishedPort.Parse("8082:80,mode=host")] }));
        Assert.Contains("already published", clash.Message, StringComparison.Ordinal);
    }
}
