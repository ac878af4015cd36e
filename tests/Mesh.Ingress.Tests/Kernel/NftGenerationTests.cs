using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// The ruleset generation on this kernel, and the executors (nft, iptables-nft) renewing their trust with it
/// instead of reading the kernel at each resync, while still seeing (and repairing) what anyone else commits.
/// </summary>
public sealed class NftGenerationTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` in parallel tests deletes those.
    private readonly string _ns = $"nftgen-{Environment.ProcessId}";
    private readonly CountingRunner _runner = new();
    private readonly NetlinkNftGeneration _generation = new();
    private NetworkNamespacePath Netns => NetworkNamespacePath.Named(_ns);

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
            await Shell.CheckedAsync("ip", "netns", "add", _ns);
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
        }
    }

    [LabFact]
    public async Task Every_commit_by_anyone_moves_the_generation_by_one_and_reads_do_not()
    {
        var start = _generation.Read(Netns);
        Assert.NotNull(start);
        await Nft("add table ip theirs");
        Assert.Equal(start + 1, _generation.Read(Netns));
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "ruleset");
        Assert.Equal(start + 1, _generation.Read(Netns));
        Assert.Null(_generation.Read(NetworkNamespacePath.Named("nftgen-no-such-namespace")));
    }

    [LabFact]
    public async Task An_unchanged_generation_renews_the_trust_without_a_listing_and_a_changed_one_lists_and_repairs()
    {
        var desired = IngressSandboxTable.Build(ClusterState.Empty, "10.255.0.2");
        var nft = new NftExecutor(_runner, TimeSpan.FromMilliseconds(1), _generation);
        Assert.True(await nft.ConvergeAsync(Netns, desired, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));

        // The trust ran out (a resync), nobody committed: nothing is listed, nothing applied.
        await Task.Delay(20);
        _runner.Listings = 0;
        Assert.False(await nft.ConvergeAsync(Netns, desired, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(0, _runner.Listings);

        // Someone else committed (another table): listed once, still nothing to do, and trusted again after.
        await Nft("add table ip theirs");
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, _runner.Listings);
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, _runner.Listings);

        // Someone deleted Mesh's table: listed, and put back.
        await Nft("delete table ip mesh");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(2, _runner.Listings);
        Assert.Contains("table ip mesh", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "tables"), StringComparison.Ordinal);

        // Without the generation, every pass after the trust ran out lists the table.
        var blind = new NftExecutor(_runner, TimeSpan.FromMilliseconds(1));
        for (var i = 0; i < 3; i++)
        {
            await Task.Delay(20);
            Assert.False(await blind.ConvergeAsync(Netns, desired, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));
        }

        Assert.Equal(5, _runner.Listings);
    }

    [LabFact]
    public async Task A_change_planned_on_knowledge_someone_else_made_stale_is_not_trusted_and_the_drift_is_repaired()
    {
        var state = Mesh.Discovery.Store.StateTransitions.RegisterNode(ClusterState.Empty, new() { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = Mesh.Discovery.Store.StateTransitions.CreateService(state, new() { Name = "web", Ports = [new PublishedPort(8080, 80)] }).State;
        state = Mesh.Discovery.Store.StateTransitions.CreateService(state, new() { Name = "api", Ports = [new PublishedPort(9090, 90)] }).State;
        state = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "web", Node = "n1" }).State;
        state = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "api", Node = "n1" }).State;
        var before = IngressSandboxTable.Build(state, "10.255.0.2");
        var after = IngressSandboxTable.Build(Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "web", Node = "n1" }).State, "10.255.0.2");
        var nft = new NftExecutor(_runner, TimeSpan.FromMilliseconds(500), _generation);
        Assert.True(await nft.ConvergeAsync(Netns, before, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));

        // Within the trust, someone empties api's chain; then Mesh applies a change of its own (a second web task).
        await Nft("flush chain ip mesh svc-api");
        Assert.True(await nft.ConvergeAsync(Netns, after, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));

        // At the resync the generation cannot vouch for what Mesh wrote on stale knowledge: listed, and api repaired.
        await Task.Delay(600);
        _runner.Listings = 0;
        Assert.True(await nft.ConvergeAsync(Netns, after, IngressSandboxTable.Family, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, _runner.Listings);
        Assert.Contains("dnat", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "chain", "ip", "mesh", "svc-api"), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task Iptables_nft_too_renews_its_trust_by_the_generation_and_lists_again_when_someone_commits()
    {
        var desired = new Mesh.Ingress.Kernel.Iptables.IptablesRuleset(
            [new("filter", "MESH-TEST", ["-p tcp -m tcp --dport 80 -j ACCEPT"])],
            [new("filter", "INPUT", "-j MESH-TEST")]);
        var ipt = new Mesh.Ingress.Kernel.Iptables.IptablesExecutor(_runner, Mesh.Ingress.Kernel.Iptables.IptablesFlavour.Nft, TimeSpan.FromMilliseconds(1), _generation);
        Assert.True(await ipt.ApplyAsync(Netns, desired, ["filter"], CancellationToken.None));

        await Task.Delay(20);
        _runner.Saves = 0;
        Assert.False(await ipt.ApplyAsync(Netns, desired, ["filter"], CancellationToken.None));
        Assert.Equal(0, _runner.Saves);

        // Someone changes Mesh's chain: the generation moved, so it is read and repaired.
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft", "-F", "MESH-TEST");
        await Task.Delay(20);
        Assert.True(await ipt.ApplyAsync(Netns, desired, ["filter"], CancellationToken.None));
        Assert.Equal(1, _runner.Saves);
        Assert.Contains("-A MESH-TEST -p tcp -m tcp --dport 80 -j ACCEPT", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft-save", "-t", "filter"), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task Iptables_nft_does_not_vouch_for_a_change_planned_on_stale_knowledge_either()
    {
        Mesh.Ingress.Kernel.Iptables.IptablesRuleset Rules(params string[] ports) => new(
            [new("filter", "MESH-A", ["-p tcp -m tcp --dport 80 -j ACCEPT"]), new("filter", "MESH-B", [.. ports.Select(p => $"-p tcp -m tcp --dport {p} -j ACCEPT")])],
            [new("filter", "INPUT", "-j MESH-A"), new("filter", "INPUT", "-j MESH-B")]);
        var ipt = new Mesh.Ingress.Kernel.Iptables.IptablesExecutor(_runner, Mesh.Ingress.Kernel.Iptables.IptablesFlavour.Nft, TimeSpan.FromMilliseconds(500), _generation);
        Assert.True(await ipt.ApplyAsync(Netns, Rules("81"), ["filter"], CancellationToken.None));

        // Within the trust someone empties MESH-A; then Mesh changes MESH-B only.
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft", "-F", "MESH-A");
        Assert.True(await ipt.ApplyAsync(Netns, Rules("81", "82"), ["filter"], CancellationToken.None));

        await Task.Delay(600);
        _runner.Saves = 0;
        Assert.True(await ipt.ApplyAsync(Netns, Rules("81", "82"), ["filter"], CancellationToken.None));
        Assert.Equal(1, _runner.Saves);
        Assert.Contains("-A MESH-A -p tcp -m tcp --dport 80 -j ACCEPT", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft-save", "-t", "filter"), StringComparison.Ordinal);
    }

    private Task<string> Nft(string script) => Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", script);

    private sealed class CountingRunner : ICommandRunner
    {
        private readonly ProcessCommandRunner _inner = new();

        public int Listings { get; set; }

        public int Saves { get; set; }

        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
        {
            if (arguments.Contains("nft") && arguments.Contains("list"))
            {
                Listings++;
            }

            if (arguments.Contains("iptables-nft-save"))
            {
                Saves++;
            }

            return _inner.RunAsync(file, arguments, standardInput, cancellationToken);
        }
    }
}
