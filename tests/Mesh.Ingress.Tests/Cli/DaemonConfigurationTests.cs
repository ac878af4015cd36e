using System.CommandLine;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Daemon;

namespace Mesh.Ingress.Tests.Cli;

/// <summary>
/// <c>mesh daemon</c>'s settings from flags, <c>MESH_*</c> variables and <c>--config FILE</c>: the real command is
/// parsed and validated; the test stops where the daemon would start and looks at the options it would run with.
/// </summary>
[Collection("Console")] // redirects Console.Error, as DaemonCommandTests does
public sealed class DaemonConfigurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Flags_override_the_environment_which_overrides_the_file_which_overrides_defaults()
    {
        var file = Write("""
            // comments and trailing commas are fine in a hand-edited file
            {
              "node": "from-file",
              "advertise-addr": "198.18.0.11",
              "lease-ttl": 20,
              "command-timeout": 30,
              "api": ["unix:///run/mesh/file.sock", "tcp://198.18.0.11:2377"],
              "insecure-api": true,
              "dns-upstream": "198.18.0.53",
              "ipvs-drain": 2.5,
            }
            """);
        var env = new Dictionary<string, string> { ["MESH_LEASE_TTL"] = "30", ["MESH_NODE"] = "from-env", ["MESH_IPVS_TCP_TIMEOUT"] = "600", ["MESH_RESYNC_INTERVAL"] = "120" };

        var (code, options, error) = await RunAsync(["--config", file, "--node", "from-flag"], env);

        Assert.True(code == 0, error);
        Assert.Equal("from-flag", options!.Node);                        // flag > env > file
        Assert.Equal(TimeSpan.FromSeconds(30), options.LeaseTtl);        // env > file
        Assert.Equal(TimeSpan.FromSeconds(600), options.Ipvs.TcpTimeout); // env only
        Assert.Equal(TimeSpan.FromSeconds(120), options.ResyncInterval);  // env only
        Assert.Equal(TimeSpan.FromSeconds(30), options.CommandTimeout);  // file > default
        Assert.Equal("198.18.0.11", options.AdvertiseAddress);
        Assert.Equal(["unix:///run/mesh/file.sock", "tcp://198.18.0.11:2377/"], options.ApiEndpoints.Select(u => u.ToString()));
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.Ipvs.DrainPeriod);
        Assert.Equal("198.18.0.53:53", Assert.Single(options.DnsUpstreams).ToString());
        Assert.Equal("/var/lib/mesh", options.StateDirectory);           // default
    }

    [Fact]
    public async Task A_flag_given_as_false_beats_true_in_the_file_and_a_repeatable_flag_replaces_the_file_list()
    {
        var file = Write("""{"node": "n1", "advertise-addr": "198.18.0.11", "api": ["tcp://198.18.0.11:2377"], "insecure-api": true}""");

        var (code, _, error) = await RunAsync(["--config", file, "--insecure-api", "false"], []);
        Assert.Equal(CliErrors.Usage, code); // a TCP API without credentials and without --insecure-api is refused
        Assert.Contains("--insecure-api", error);

        var (ok, options, error2) = await RunAsync(["--config", file, "--api", "unix:///run/mesh/flag.sock"], []);
        Assert.True(ok == 0, error2);
        Assert.Equal("unix:///run/mesh/flag.sock", Assert.Single(options!.ApiEndpoints).ToString());
    }

    [Fact]
    public async Task The_config_file_can_come_from_MESH_CONFIG_and_an_empty_variable_counts_as_unset()
    {
        var file = Write("""{"node": "n1", "advertise-addr": "198.18.0.11"}""");
        var (code, options, error) = await RunAsync([], new() { ["MESH_CONFIG"] = file, ["MESH_LEASE_TTL"] = "" });
        Assert.True(code == 0, error);
        Assert.Equal("n1", options!.Node);
        Assert.Equal(TimeSpan.FromSeconds(10), options.LeaseTtl);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ResyncInterval); // the default
    }

    [Theory]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.11", "lease_ttl": 5}""", "\"lease_ttl\" in FILE: unknown key")]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.11", "lease-ttl": "5"}""", "\"lease-ttl\" in FILE must be a whole number, not the string \"5\"")]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.11", "lease-ttl": 2.5}""", "\"lease-ttl\" in FILE must be a whole number, not the number 2.5")]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.11", "insecure-api": "yes"}""", "\"insecure-api\" in FILE must be true or false")]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.11", "api": [1]}""", "\"api\" in FILE must be a string or a list of strings, not a list")]
    [InlineData("""{"node": null, "advertise-addr": "198.18.0.11"}""", "\"node\" in FILE must be a string, not null")]
    [InlineData("""{"node": "n1", "node": "n2", "advertise-addr": "198.18.0.11"}""", "\"node\" in FILE: given twice")]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.11", "config": "/etc/other.json"}""", "\"config\" in FILE: unknown key")]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.11", "lease-ttl": 1}""", "--lease-ttl 1: use 2 to 3600 seconds (--lease-ttl from \"lease-ttl\" in FILE)")]
    [InlineData("""{"node": "-bad-", "advertise-addr": "198.18.0.11"}""", "(--node from \"node\" in FILE)")]
    [InlineData("""{"node": "n1", "advertise-addr": "198.18.0.999"}""", "(--advertise-addr from \"advertise-addr\" in FILE)")]
    [InlineData("""["node"]""", "--config FILE: must be one JSON object")]
    [InlineData("""{"node": "n1",""", "--config FILE: not valid JSON at line 1")]
    [InlineData("""{"advertise-addr": "198.18.0.11"}""", "--node is required: give --node, MESH_NODE or \"node\" in the --config file")]
    public async Task A_bad_file_exits_2_naming_the_key_and_the_file_and_nothing_starts(string json, string expected)
    {
        var file = Write(json);
        var (code, options, error) = await RunAsync(["--config", file], []);
        Assert.Equal(CliErrors.Usage, code);
        Assert.Null(options);
        Assert.Contains(expected.Replace("FILE", file, StringComparison.Ordinal), error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MESH_LEASE_TTL", "ten", "MESH_LEASE_TTL='ten' must be a whole number")]
    [InlineData("MESH_LEASE_TTL", "1", "--lease-ttl 1: use 2 to 3600 seconds (--lease-ttl from MESH_LEASE_TTL)")]
    [InlineData("MESH_INSECURE_API", "maybe", "MESH_INSECURE_API='maybe' must be true or false")]
    [InlineData("MESH_RESYNC_INTERVAL", "4", "--resync-interval must be 5 to 3600 seconds, not 4")]
    [InlineData("MESH_IPVS_DRAIN", "NaN", "MESH_IPVS_DRAIN='NaN' must be a number")]
    [InlineData("MESH_L4_METRICS_BACKENDS", "70000", "--l4-metrics-backends 70000: use 0 to 65534 (the ingress network's addresses) (--l4-metrics-backends from MESH_L4_METRICS_BACKENDS)")]
    [InlineData("MESH_L4_METRICS_BACKENDS", "-1", "--l4-metrics-backends -1: use 0 to 65534")]
    [InlineData("MESH_API", "unix:///run/a.sock,http://x", "--api 'http://x' must be unix:///path/to/mesh.sock or tcp://IP:PORT (--api from MESH_API)")]
    public async Task A_bad_variable_exits_2_naming_it(string name, string value, string expected)
    {
        var (code, _, error) = await RunAsync(["--node", "n1", "--advertise-addr", "198.18.0.11"], new() { [name] = value });
        Assert.Equal(CliErrors.Usage, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_that_looks_like_a_flag_stays_a_value()
    {
        var file = Write("""{"node": "--help", "advertise-addr": "198.18.0.11"}""");
        var (code, _, error) = await RunAsync(["--config", file], []);
        Assert.Equal(CliErrors.Usage, code);
        Assert.Contains("'--help' is not a valid name", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_config_file_is_a_usage_error_naming_it()
    {
        var missing = Path.Combine(_dir, "nope.json");
        var (code, _, error) = await RunAsync(["--config", missing], []);
        Assert.Equal(CliErrors.Usage, code);
        Assert.Contains($"--config {missing}: cannot read it", error, StringComparison.Ordinal);
    }

    private string Write(string json)
    {
        var path = Path.Combine(_dir, $"mesh-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static async Task<(int Code, DaemonOptions? Options, string Error)> RunAsync(string[] args, Dictionary<string, string> environment)
    {
        DaemonOptions? seen = null;
        var root = new RootCommand { DaemonCommand.Build(name => environment.GetValueOrDefault(name), (options, _) => { seen = options; return Task.FromResult(0); }) };
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        int code;
        try
        {
            code = await root.Parse(["daemon", .. args]).InvokeAsync();
        }
        finally
        {
            Console.SetError(saved);
        }

        return (code, seen, error.ToString());
    }
}
