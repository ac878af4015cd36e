using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>
/// A node switched to the ipvs dataplane removes the nftables dataplane's tables, once, from its sandbox and task
/// namespaces, and nobody else's. On this kernel (no IPVS) only the nftables half can be exercised; the IPVS half
/// removes services through the same diff the user-mode-linux tests cover.
/// </summary>
public sealed class DataplaneSwitchCleanupTests : IAsyncLifetime
{
    // Not mesh-*: the lab's `lab down` (run by other tests in parallel) deletes mesh-* namespaces.
    private readonly string _sandbox = $"switchtest-sbx-{Environment.ProcessId}";
    private readonly string _task = $"switchtest-task-{Environment.ProcessId}";

    public async Task InitializeAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }

        foreach (var ns in new[] { _sandbox, _task })
        {
            await Shell.RunAsync("ip", "netns", "del", ns);
            await Shell.CheckedAsync("ip", "netns", "add", ns);
            // What the nftables dataplane leaves (its table) and what someone else owns (must stay).
            await Nft(ns, "add table ip mesh { chain prerouting { type nat hook prerouting priority dstnat; counter; }; }");
            await Nft(ns, "add table ip theirs { chain output { type filter hook output priority 0; counter; }; }");
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _sandbox);
            await Shell.RunAsync("ip", "netns", "del", _task);
        }
    }

    [LabFact]
    public async Task The_other_dataplanes_tables_go_once_per_namespace_and_other_tables_stay()
    {
        var nftables = new NftablesDataplane(new NfTablesExecutor(), new IngressSandbox(new NetlinkLinks(), new NodeNetworkOptions { IngressSandbox = _sandbox }));
        var cleanup = new DataplaneSwitchCleanup(nftables, NullLogger<DataplaneSwitchCleanup>.Instance);
        var task = NetworkNamespacePath.Named(_task);

        Assert.True(await cleanup.SandboxAsync(CancellationToken.None));
        Assert.True(await cleanup.TaskAsync(task, CancellationToken.None));
        Assert.Equal(["theirs"], await TablesAsync(_sandbox));
        Assert.Equal(["theirs"], await TablesAsync(_task));

        // Once: a table made again later (by no one Mesh runs) is not looked for on every pass...
        await Nft(_task, "add table ip mesh");
        Assert.False(await cleanup.TaskAsync(task, CancellationToken.None));
        Assert.Equal(["mesh", "theirs"], (await TablesAsync(_task)).Order());

        // ...until the namespace is forgotten (deleted and made again at the same path).
        cleanup.Forget(task);
        Assert.True(await cleanup.TaskAsync(task, CancellationToken.None));
        Assert.Equal(["theirs"], await TablesAsync(_task));
    }

    [Fact]
    public async Task Without_another_dataplane_nothing_is_done()
    {
        var cleanup = new DataplaneSwitchCleanup(null, NullLogger<DataplaneSwitchCleanup>.Instance);
        Assert.False(await cleanup.SandboxAsync(CancellationToken.None));
        Assert.False(await cleanup.TaskAsync(NetworkNamespacePath.Named("nowhere"), CancellationToken.None));
    }

    private Task<string> Nft(string ns, string script) => Shell.CheckedAsync("ip", "netns", "exec", ns, "nft", script);

    private static async Task<List<string>> TablesAsync(string ns) =>
        (await Shell.CheckedAsync("ip", "netns", "exec", ns, "nft", "list", "tables"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[^1]).ToList();
}
