using System.Collections;
using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Cni;

namespace Mesh.Ingress.Tests.Cni;

/// <summary>The CNI codec against the spec's own examples (https://www.cni.dev/docs/spec/, 1.0.0 and 1.1.0).</summary>
public sealed class CniCodecTests
{
    private static Hashtable Env(params (string Key, string Value)[] vars)
    {
        var env = new Hashtable();
        foreach (var (k, v) in vars)
        {
            env[k] = v;
        }

        return env;
    }

    private static Hashtable Add(params (string Key, string Value)[] overrides)
    {
        var env = Env(("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "3f9a0c1b2d"), ("CNI_NETNS", "/var/run/netns/blue"), ("CNI_IFNAME", "eth0"), ("CNI_PATH", "/opt/cni/bin"));
        foreach (var (k, v) in overrides)
        {
            env[k] = v;
        }

        return env;
    }

    private static CniErrorCode Code(Action action) => Assert.Throws<CniException>(action).Code;

    [Fact]
    public void The_runtime_parameters_of_an_add_are_read_from_the_environment()
    {
        var env = CniEnvironment.Parse(Add(("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web-a")));
        Assert.Equal(CniCommand.Add, env.Command);
        Assert.Equal("3f9a0c1b2d", env.ContainerId);
        Assert.Equal("/var/run/netns/blue", env.Netns);
        Assert.Equal("eth0", env.InterfaceName);
        Assert.Equal("web-a", env.Args["K8S_POD_NAME"]);
        Assert.Equal(["/opt/cni/bin"], env.Path);
    }

    [Theory]
    [InlineData("CNI_COMMAND", null, "CNI_COMMAND is not set")]
    [InlineData("CNI_COMMAND", "ATTACH", "CNI_COMMAND 'ATTACH' is not ADD, DEL, CHECK, VERSION, STATUS or GC")]
    [InlineData("CNI_CONTAINERID", null, "CNI_CONTAINERID is not set")]
    [InlineData("CNI_CONTAINERID", "../etc", "is not a container ID")]
    [InlineData("CNI_IFNAME", "an-interface-name", "is not an interface name")]
    [InlineData("CNI_IFNAME", "eth/0", "is not an interface name")]
    [InlineData("CNI_NETNS", null, "CNI_NETNS is not set")]
    [InlineData("CNI_NETNS", "/etc/passwd", "is not a network namespace path")]
    [InlineData("CNI_ARGS", "novalue", "is not a list of KEY=VALUE pairs")]
    public void A_missing_or_malformed_variable_is_error_4_naming_it(string variable, string? value, string message)
    {
        var env = Add();
        if (value is null)
        {
            env.Remove(variable);
        }
        else
        {
            env[variable] = value;
        }

        var e = Assert.Throws<CniException>(() => CniEnvironment.Parse(env));
        Assert.Equal(CniErrorCode.InvalidEnvironment, e.Code);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Del_may_come_without_a_namespace_and_version_needs_nothing_else()
    {
        var del = Add(("CNI_COMMAND", "DEL"));
        del.Remove("CNI_NETNS");
        Assert.Null(CniEnvironment.Parse(del).Netns);
        Assert.Equal(CniCommand.Version, CniEnvironment.Parse(Env(("CNI_COMMAND", "VERSION"))).Command);
    }

    /// <summary>The spec's example configuration (section "Example configuration"): plugin keys Mesh does not know are ignored.</summary>
    private const string SpecExample = """
        {
          "cniVersion": "1.0.0",
          "name": "dbnet",
          "type": "mesh-cni",
          "bridge": "cni0",
          "keyA": ["some more", "plugin specific", "configuration"],
          "ipam": { "type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1" },
          "dns": { "nameservers": [ "10.1.0.1" ] },
          "service": "web"
        }
        """;

    [Fact]
    public void The_spec_example_configuration_parses_with_defaults_for_what_it_leaves_out()
    {
        var config = CniNetworkConfig.Parse(Encoding.UTF8.GetBytes(SpecExample));
        Assert.Equal("1.0.0", config.CniVersion);
        Assert.Equal("dbnet", config.Name);
        Assert.Equal("web", config.Service);
        Assert.Equal("unix:///run/mesh/mesh.sock", config.Api);
        Assert.Equal(1450, config.Mtu);
    }

    [Theory]
    [InlineData("""{"cniVersion":"0.4.0","name":"n","type":"mesh-cni"}""", CniErrorCode.IncompatibleVersion)]
    [InlineData("""{"cniVersion":"2.0.0","name":"n","type":"mesh-cni"}""", CniErrorCode.IncompatibleVersion)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n",""", CniErrorCode.DecodingFailure)]
    [InlineData("""["cniVersion"]""", CniErrorCode.DecodingFailure)]
    [InlineData("""{"cniVersion":"1.0.0","type":"mesh-cni"}""", CniErrorCode.InvalidConfig)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"mesh-cni","service":"web site"}""", CniErrorCode.InvalidConfig)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"mesh-cni","api":"https://198.18.0.11:2377"}""", CniErrorCode.InvalidConfig)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"mesh-cni","mtu":70000}""", CniErrorCode.InvalidConfig)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"mesh-cni","mtu":"1450"}""", CniErrorCode.InvalidConfig)]
    public void A_bad_configuration_gets_the_specs_code(string json, CniErrorCode code) =>
        Assert.Equal(code, Code(() => CniNetworkConfig.Parse(Encoding.UTF8.GetBytes(json))));

    [Fact]
    public void Gc_reads_the_valid_attachments()
    {
        var config = CniNetworkConfig.Parse("""
            {"cniVersion":"1.1.0","name":"mesh-web","type":"mesh-cni","service":"web",
             "cni.dev/valid-attachments":[{"containerID":"a1","ifname":"eth0"},{"containerID":"b2","ifname":"eth0"}]}
            """u8);
        Assert.Equal([new CniAttachment("a1", "eth0"), new CniAttachment("b2", "eth0")], config.ValidAttachments);
    }

    [Fact]
    public void The_error_json_is_the_specs_layout()
    {
        // The spec's example error: {"cniVersion": "1.1.0", "code": 7, "msg": "Invalid Configuration", "details": "..."}.
        var json = Encoding.UTF8.GetString(CniResult.Error("1.1.0", CniErrorCode.InvalidConfig, "Invalid Configuration", "Network 192.168.0.0/31 too small to allocate from."));
        Assert.Equal("""{"cniVersion":"1.1.0","code":7,"msg":"Invalid Configuration","details":"Network 192.168.0.0/31 too small to allocate from."}""", json);
        Assert.Equal("""{"cniVersion":"1.0.0","code":11,"msg":"later"}""", Encoding.UTF8.GetString(CniResult.Error("1.0.0", CniErrorCode.TryAgainLater, "later", null)));
    }

    [Fact]
    public void Version_lists_the_supported_versions()
    {
        using var doc = JsonDocument.Parse(CniResult.Version(CniVersions.Latest));
        Assert.Equal("1.1.0", doc.RootElement.GetProperty("cniVersion").GetString());
        Assert.Equal(["1.0.0", "1.1.0"], doc.RootElement.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
    }

    private static (ClusterState State, ServiceTask Task) WebTask()
    {
        var s = new ClusterState();
        s = StateTransitions.RegisterNode(s, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        s = StateTransitions.CreateNetwork(s, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Networks = ["appnet"] }).State;
        return StateTransitions.AddTask(s, new TaskSpec { Service = "web", Node = "n1", ContainerId = "3f9a0c1b2d" });
    }

    [Fact]
    public void Legs_follow_the_services_networks_ingress_first_with_macs_from_their_addresses()
    {
        var (state, task) = WebTask();
        var legs = CniLeg.Plan("3f9a0c1b2d", "eth0", state, task, n => "br-" + n);
        Assert.Equal(["ingress", "appnet"], legs.Select(l => l.Network));
        Assert.Equal(["eth0", "eth1"], legs.Select(l => l.ContainerInterface));
        Assert.Equal(["br-ingress", "br-appnet"], legs.Select(l => l.Bridge));
        Assert.Equal(CniLeg.HostPrefix("3f9a0c1b2d") + "1", legs[1].HostInterface);
        Assert.Equal(task.Addresses["appnet"] + "/24", legs[1].Cidr);
        Assert.Equal(task.Addresses["ingress"] + "/16", legs[0].Cidr);
        Assert.Equal("02:42:0a:00:01:05", CniLeg.MacOf("10.0.1.5"));
        Assert.Matches("^mc[0-9a-f]{8}$", CniLeg.HostPrefix("3f9a0c1b2d"));
    }

    [Theory]
    [InlineData("eth0", 1, "eth1")]
    [InlineData("eth9", 2, "eth11")]
    [InlineData("net", 2, "net2")]
    public void Further_legs_count_on_from_the_runtimes_interface_name(string first, int index, string expected) =>
        Assert.Equal(expected, CniLeg.InterfaceAt(first, index));

    [Fact]
    public void The_success_result_has_interfaces_ips_pointing_at_the_container_side_and_the_embedded_dns()
    {
        var (state, task) = WebTask();
        var legs = CniLeg.Plan("3f9a0c1b2d", "eth0", state, task, n => "br-" + n);
        using var doc = JsonDocument.Parse(CniResult.Success("1.0.0", "/var/run/netns/blue", legs));
        var root = doc.RootElement;
        Assert.Equal("1.0.0", root.GetProperty("cniVersion").GetString());
        var interfaces = root.GetProperty("interfaces").EnumerateArray().ToArray();
        Assert.Equal([legs[0].HostInterface, "eth0", legs[1].HostInterface, "eth1"], interfaces.Select(i => i.GetProperty("name").GetString()));
        Assert.Equal("/var/run/netns/blue", interfaces[1].GetProperty("sandbox").GetString());
        Assert.False(interfaces[0].TryGetProperty("sandbox", out _));
        var ips = root.GetProperty("ips").EnumerateArray().ToArray();
        Assert.Equal([legs[0].Cidr, legs[1].Cidr], ips.Select(i => i.GetProperty("address").GetString()));
        Assert.Equal([1, 3], ips.Select(i => i.GetProperty("interface").GetInt32()));
        Assert.Equal(legs[1].Mac, interfaces[ips[1].GetProperty("interface").GetInt32()].GetProperty("mac").GetString());
        Assert.Equal(["127.0.0.11"], root.GetProperty("dns").GetProperty("nameservers").EnumerateArray().Select(n => n.GetString()));
    }
}
