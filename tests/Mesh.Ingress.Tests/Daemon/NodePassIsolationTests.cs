using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Daemon.Systemd;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.Extensions.Logging.Abstractions;
using Mesh.Ingress.Tests.Doubles;

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
        var refusing = new Mesh.Ingress.Tests.Kernel.FakeLinks { Refuse = true };
        var network = new NodeNetworkOptions { IngressSandbox = _sandbox };
        var options = new DaemonOptions { Node = "n1", AdvertiseAddress = "198.18.0.11", Network = network };
        var runner = new RefusingRunner();
        var nft = new NfTablesExecutor();
        var iptables = new IptablesExecutor(runner, IptablesFlavour.Nft);
        var sandbox = new IngressSandbox(refusing, network);
        var dataplane = new NftablesDataplane(nft, sandbox);
        var cleanup = new DataplaneSwitchCleanup(null, NullLogger<DataplaneSwitchCleanup>.Instance);
        var planner = new NodePlanner(true, network, new IpvsOptions(), new NetworkNamespacePath(_notANamespace));
        var taskRules = new TaskRulesWriter(iptables, nft, true, runner, NullLogger<TaskRulesWriter>.Instance);
        using var meters = new Mesh.Ingress.Tests.Telemetry.TestMeterFactory();
        using var telemetry = new Mesh.Ingress.Telemetry.MeshTelemetry(meters);
        await using var resolvers = new TaskResolvers(new ClusterDnsAuthority(), [], NullLoggerFactory.Instance);
        var tasks = new TaskNamespaceSync(planner, new TaskNamespaceExecutor(dataplane, cleanup, taskRules, new TaskResolvConfWriter([], "/etc/resolv.conf"), new ClientReplyRoutes(refusing)),
            cleanup, taskRules, nft, resolvers, new TaskNamespaceGuard(network), options, telemetry, NullLogger<TaskNamespaceSync>.Instance);
        var status = new NodeStatus { Node = "n1", Store = "embedded" };
        using var reconciler = new NodeReconciler(store, dataplane, planner, new SandboxExecutor(dataplane, cleanup, sandbox), sandbox,
            new Mesh.Ingress.Overlay.OverlayNetworks(new RefusingOverlayKernel(), options, NullLogger<Mesh.Ingress.Overlay.OverlayNetworks>.Instance),
            new Mesh.Ingress.Egress.TaskEgress(refusing, new TaskNamespaceGuard(network), options, NullLogger<Mesh.Ingress.Egress.TaskEgress>.Instance),
            new HostRulesWriter(iptables, nft, true, runner, NullLogger<HostRulesWriter>.Instance), tasks, options,
            status, telemetry, new SyncLoopLiveness(TimeProvider.System), new Mesh.Ingress.Health.LocalTaskCounts(), NullLogger<NodeReconciler>.Instance);
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
