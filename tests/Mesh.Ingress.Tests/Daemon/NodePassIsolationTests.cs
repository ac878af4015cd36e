using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Tests.Doubles;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Daemon;

/// <summary>
/// Issue 12: the node pass converges each of the node's namespaces on its own. Here the host's "namespace" is a
/// regular file (its rules cannot be written), the overlays' kernel and the sandbox's links refuse every call, and
/// the ingress sandbox is a real scratch namespace: its table is still written in the same pass, and the node's
/// error names each namespace and object that failed. Before, the pass stopped at its first failure, the overlays.
/// Nothing outside the test's files and namespace is touched (no process runs: the runner refuses).
/// </summary>
public sealed class NodePassIsolationTests : IAsyncLifetime
{
    private readonly string _sandbox = $"mpass-{Environment.ProcessId}-sbx";
    private readonly string _notANamespace = Path.Combine(Path.GetTempPath(), $"mpass-{Environment.ProcessId}-host");

    public async Task InitializeAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }

        await Shell.RunAsync("ip", "netns", "del", _sandbox);
        await Shell.CheckedAsync("ip", "netns", "add", _sandbox);
        await File.WriteAllTextAsync(_notANamespace, "not a namespace\n");
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _sandbox);
            File.Delete(_notANamespace);
        }
    }

    [LabFact]
    public async Task A_host_that_fails_does_not_stop_the_sandbox_and_the_error_names_each_namespace_and_object()
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await using var node = new RefusingNodeReconciler(store, _sandbox, new NetworkNamespacePath(_notANamespace));
        var (reconciler, status, runner) = (node.Reconciler, node.Status, node.Runner);
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.AddTaskAsync(new TaskSpec { Name = "web.1", Service = "web", Node = "n1" });

        await reconciler.StartAsync(CancellationToken.None);
        var clock = Stopwatch.StartNew();
        while (status.LastError?.Contains("host (", StringComparison.Ordinal) != true && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(50);
        }

        await reconciler.StopAsync(CancellationToken.None);
        var error = status.LastError ?? "";
        Assert.StartsWith("3 of the node's objects did not converge: host overlays, "
            + $"sandbox (/var/run/netns/{_sandbox}) links, host ({_notANamespace}) host rules; first: RTM_GETLINK dump failed: EPERM", error, StringComparison.Ordinal);

        // The sandbox's table was written in the same pass: web's published port, to web.1's ingress address.
        var web1 = (await store.GetStateAsync()).Tasks.Single(t => t.Name == "web.1").Addresses[OverlayNetwork.IngressName];
        var table = await Shell.CheckedAsync("ip", "netns", "exec", _sandbox, "nft", "list", "table", "ip", IngressSandboxTable.Name);
        Assert.Contains("8080", table, StringComparison.Ordinal);
        Assert.Contains(web1, table, StringComparison.Ordinal);
        Assert.Equal(0, runner.Calls);
    }
}
