using System.Collections;
using System.Text;
using System.Text.Json;
using Mesh.Ingress.Cni;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Tests.Cni;

/// <summary>The plugin's process edge without a daemon: every failure is error JSON with the spec's code and exit 1.</summary>
public sealed class CniMainTests
{
    private static readonly string NoDaemon = $"unix:///tmp/mesh-cni-test-{Guid.NewGuid():N}.sock";

    private static async Task<(JsonElement Json, int Exit)> RunAsync(string command, string? config, params (string Key, string Value)[] extra)
    {
        var env = new Hashtable { ["CNI_COMMAND"] = command, ["CNI_CONTAINERID"] = "c0ffee", ["CNI_IFNAME"] = "eth0", ["CNI_NETNS"] = $"/proc/{Environment.ProcessId}/ns/net" };
        foreach (var (k, v) in extra)
        {
            env[k] = v;
        }

        var (output, exit) = await CniMain.RunAsync(env, new MemoryStream(Encoding.UTF8.GetBytes(config ?? "")));
        return (output.Length == 0 ? default : JsonDocument.Parse(output).RootElement.Clone(), exit);
    }

    private static string Config(string version = "1.0.0") =>
        $$"""{"cniVersion":"{{version}}","name":"mesh-web","type":"mesh-cni","service":"web","api":"{{NoDaemon}}"}""";

    [Fact]
    public async Task Version_answers_without_reading_stdin()
    {
        var (json, exit) = await RunAsync("VERSION", null);
        Assert.Equal(0, exit);
        Assert.Contains("1.0.0", json.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public async Task Add_without_a_daemon_is_try_again_later_in_the_configurations_version()
    {
        var (json, exit) = await RunAsync("ADD", Config());
        Assert.Equal(1, exit);
        Assert.Equal(11, json.GetProperty("code").GetInt32());
        Assert.Equal("1.0.0", json.GetProperty("cniVersion").GetString());
        Assert.Contains("mesh daemon", json.GetProperty("msg").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_without_a_daemon_is_plugin_not_available_and_needs_1_1_0()
    {
        var (json, exit) = await RunAsync("STATUS", Config("1.1.0"));
        Assert.Equal((1, 50), (exit, json.GetProperty("code").GetInt32()));
        (json, exit) = await RunAsync("STATUS", Config("1.0.0"));
        Assert.Equal((1, 1), (exit, json.GetProperty("code").GetInt32()));
    }

    [Fact]
    public async Task Bad_environment_and_bad_stdin_are_named_with_their_codes()
    {
        var (json, exit) = await RunAsync("ADD", Config(), ("CNI_IFNAME", "x/y"));
        Assert.Equal((1, 4), (exit, json.GetProperty("code").GetInt32()));
        (json, exit) = await RunAsync("ADD", "not json");
        Assert.Equal((1, 6), (exit, json.GetProperty("code").GetInt32()));
        (json, exit) = await RunAsync("ADD", """{"cniVersion":"1.0.0","name":"mesh-web","type":"mesh-cni"}""");
        Assert.Equal((1, 7), (exit, json.GetProperty("code").GetInt32()));
        Assert.Contains("service", json.GetProperty("msg").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Add_into_a_namespace_that_does_not_exist_is_refused_before_anything_is_asked()
    {
        var (json, exit) = await RunAsync("ADD", Config(), ("CNI_NETNS", "/run/netns/mesh-cni-no-such-netns"));
        Assert.Equal((1, 4), (exit, json.GetProperty("code").GetInt32()));
        Assert.Contains("does not exist", json.GetProperty("msg").GetString(), StringComparison.Ordinal);
    }
}
