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
using Mesh.Ingress.Telemetry;
using Mesh.Ingress.Tests.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Doubles;

/// <summary>
/// The daemon's <see cref="NodeReconciler"/> for node n1 (advertise 198.18.0.11) over a real store, built with the
/// nftables dataplane, whose other collaborators refuse: no process runs (<see cref="Runner"/>), the overlays' kernel
/// and every link call fail as without the capability, and the host's rules go to <paramref name="host"/> (a path
/// that is no namespace). Only the ingress sandbox's table may be written, into <paramref name="sandbox"/>'s namespace
/// if the test made it.
/// </summary>
internal sealed class RefusingNodeReconciler : IAsyncDisposable
{
    private readonly TestMeterFactory _meters = new();
    private readonly MeshTelemetry _telemetry;
    private readonly TaskResolvers _resolvers = new(new ClusterDnsAuthority(), [], NullLoggerFactory.Instance);

    public RefusingNodeReconciler(IClusterStore store, string sandbox, NetworkNamespacePath host)
    {
        _telemetry = new MeshTelemetry(_meters);
        var refusing = new Mesh.Ingress.Tests.Kernel.FakeLinks { Refuse = true };
        var network = new NodeNetworkOptions { IngressSandbox = sandbox };
        var options = new DaemonOptions { Node = "n1", AdvertiseAddress = "198.18.0.11", Network = network };
        var nft = new NfTablesExecutor();
        var iptables = new IptablesExecutor(Runner, IptablesFlavour.Nft);
        var ingressSandbox = new IngressSandbox(refusing, network);
        var dataplane = new NftablesDataplane(nft, ingressSandbox);
        var cleanup = new DataplaneSwitchCleanup(null, NullLogger<DataplaneSwitchCleanup>.Instance);
        var planner = new NodePlanner(true, network, new IpvsOptions(), host);
        var taskRules = new TaskRulesWriter(iptables, nft, true, Runner, NullLogger<TaskRulesWriter>.Instance);
        var executor = new TaskNamespaceExecutor(dataplane, cleanup, taskRules, new TaskResolvConfWriter([], "/etc/resolv.conf"), new ClientReplyRoutes(refusing));
        var tasks = new TaskNamespaceSync(planner, executor, cleanup, taskRules, nft, _resolvers, new TaskNamespaceGuard(network), options, _telemetry, NullLogger<TaskNamespaceSync>.Instance);
        Reconciler = new NodeReconciler(
            store,
            dataplane,
            planner,
            new SandboxExecutor(dataplane, cleanup, ingressSandbox),
            ingressSandbox,
            new Mesh.Ingress.Overlay.OverlayNetworks(OverlayKernel, options, NullLogger<Mesh.Ingress.Overlay.OverlayNetworks>.Instance),
            new Mesh.Ingress.Egress.TaskEgress(refusing, new TaskNamespaceGuard(network), options, NullLogger<Mesh.Ingress.Egress.TaskEgress>.Instance),
            new HostRulesWriter(iptables, nft, true, Runner, NullLogger<HostRulesWriter>.Instance),
            tasks,
            options,
            Status,
            _telemetry,
            new SyncLoopLiveness(TimeProvider.System),
            new Mesh.Ingress.Health.LocalTaskCounts(),
            NullLogger<NodeReconciler>.Instance);
    }

    public RefusingRunner Runner { get; } = new();

    public RefusingOverlayKernel OverlayKernel { get; } = new();

    public NodeStatus Status { get; } = new() { Node = "n1", Store = "embedded" };

    public NodeReconciler Reconciler { get; }

    public async ValueTask DisposeAsync()
    {
        Reconciler.Dispose();
        await _resolvers.DisposeAsync();
        _telemetry.Dispose();
        _meters.Dispose();
    }
}
