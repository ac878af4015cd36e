using System.CommandLine;
using Mesh.Ingress.Cli;

namespace Mesh.Ingress.Tests.Cli;

/// <summary>Redirects Console.Error: shares a collection with the other tests that do, so they never run at once.</summary>
[Collection("Console")]
public class DaemonCommandTests
{
    [Fact]
    public void Dns_upstream_at_the_embedded_resolver_is_refused_naming_the_option()
    {
        var e = Assert.Throws<ArgumentException>(() => DaemonCommand.ParseUpstream("127.0.0.11"));
        Assert.Contains("--dns-upstream", e.Message);
        Assert.Contains("127.0.0.11", e.Message);
        Assert.Throws<ArgumentException>(() => DaemonCommand.ParseUpstream("127.0.0.11:5353"));
        Assert.Equal(System.Net.IPEndPoint.Parse("127.0.0.53:53"), DaemonCommand.ParseUpstream("127.0.0.53"));
    }

    [Fact]
    public async Task Daemon_with_dns_upstream_127_0_0_11_exits_with_a_usage_error_before_starting()
    {
        var root = new RootCommand { DaemonCommand.Build() };
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        int code;
        try
        {
            code = await root.Parse(["daemon", "--node", "n1", "--advertise-addr", "198.18.0.11", "--dns-upstream", "127.0.0.11"]).InvokeAsync();
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.Equal(CliErrors.Usage, code);
        Assert.Contains("--dns-upstream 127.0.0.11:53", error.ToString());
    }
}
