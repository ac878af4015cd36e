using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>The iptables backend probe with the real tools: what a daemon started without CAP_NET_ADMIN is told.</summary>
public sealed class IptablesFlavourTests
{
    private static readonly ProcessCommandRunner Runner = new(TimeSpan.FromSeconds(30));

    /// <summary>Runs every tool through <c>setpriv</c> with CAP_NET_ADMIN dropped from the bounding set: root without it.</summary>
    private sealed class WithoutNetAdmin(ICommandRunner inner) : ICommandRunner
    {
        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default) =>
            inner.RunAsync("setpriv", ["--bounding-set=-net_admin", "--inh-caps=-net_admin", "--", file, .. arguments], standardInput, cancellationToken);
    }

    [Fact]
    public async Task Without_CAP_NET_ADMIN_the_error_names_the_capability_and_what_each_tool_said()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => IptablesFlavour.DetectAsync(new WithoutNetAdmin(Runner), CancellationToken.None));

        Assert.Contains("needs CAP_NET_ADMIN", e.Message, StringComparison.Ordinal);
        Assert.Contains("iptables-nft-save: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("iptables-legacy-save: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("install Debian's", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task As_root_a_backend_that_works_is_chosen()
    {
        var flavour = await IptablesFlavour.DetectAsync(Runner, CancellationToken.None);

        Assert.Equal(0, (await Runner.RunAsync(flavour.Save, ["-t", "nat"])).ExitCode);
    }
}
