using System.CommandLine;
using Mesh.Discovery.Model;
using Mesh.Ingress.Cli;

namespace Mesh.Ingress.Tests.Cli;

/// <summary><c>mesh service create</c>'s health options: errors name the option, before anything is sent.</summary>
public sealed class HealthCheckOptionsTests
{
    private static HealthCheck? Parse(params string[] args)
    {
        var options = new HealthCheckOptions();
        var command = new RootCommand();
        foreach (var option in options.All)
        {
            command.Options.Add(option);
        }

        var parse = command.Parse(args);
        Assert.Empty(parse.Errors);
        return options.Parse(parse);
    }

    [Fact]
    public void No_option_no_check_and_defaults_fill_the_rest()
    {
        Assert.Null(Parse());
        Assert.Equal(new HealthCheck { Path = "/healthz" }, Parse("--health-path", "/healthz"));
        Assert.Equal(new HealthCheck { Kind = HealthCheckKind.Tcp, IntervalMs = 500, TimeoutMs = 500, HealthyThreshold = 1, UnhealthyThreshold = 3 },
            Parse("--health-tcp", "--health-interval", "500ms", "--health-healthy-threshold", "1", "--health-unhealthy-threshold", "3"));
        Assert.Equal(1500, Parse("--health-path", "/", "--health-interval", "1.5s")!.IntervalMs);
        Assert.Equal(60_000, Parse("--health-path", "/", "--health-interval", "1m")!.IntervalMs);
    }

    [Theory]
    [InlineData("--health-interval", "--health-path", "/", "--health-interval", "5")]
    [InlineData("--health-interval", "--health-path", "/", "--health-interval", "50ms")]
    [InlineData("--health-timeout", "--health-path", "/", "--health-interval", "1s", "--health-timeout", "2s")]
    [InlineData("--health-path", "--health-path", "healthz")]
    [InlineData("--health-unhealthy-threshold", "--health-tcp", "--health-unhealthy-threshold", "0")]
    [InlineData("--health-path", "--health-tcp", "--health-path", "/")]
    [InlineData("--health-interval", "--health-interval", "1s")]
    public void A_wrong_option_is_named(string option, params string[] args) =>
        Assert.StartsWith(option, Assert.Throws<ArgumentException>(() => Parse(args)).Message, StringComparison.Ordinal);
}
