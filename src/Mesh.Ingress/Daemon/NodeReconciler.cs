using System.Diagnostics;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// The sync loop: read the whole desired state, diff it against the kernel object by object, apply
/// only what differs. Runs on start (so a restarted daemon converges without duplicating anything), on
/// every store change (coalesced), and every <see cref="DaemonOptions.ResyncInterval"/> to repair drift.
/// </summary>
public sealed partial class NodeReconciler(
    IClusterStore store,
    IDataplane dataplane,
    DataplaneSwitchCleanup otherDataplane,
    IngressSandbox sandbox,
    IptablesExecutor iptables,
    NftExecutor nft,
    TaskResolvers resolvers,
    DaemonOptions options,
    NodeStatus status,
    MeshTelemetry telemetry,
    ILogger<NodeReconciler> logger) : BackgroundService
{
    /// <summary>When the sandbox's links were last verified, and for which address: checking them costs a few
    /// process starts, so it happens on start, on a change of address, after an error and at each resync.</summary>
    private (string Address, long At)? _sandboxVerified;

    /// <summary>The task ingress addresses of the last applied state, to tell which came or went.</summary>
    private HashSet<string>? _taskAddresses;

    private readonly NodeRegistration _registration = new(store, options, status, logger);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var node = await RegisterAsync(stoppingToken).ConfigureAwait(false);
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!stoppingToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            long revision;
            try
            {
                var state = await store.GetStateAsync(stoppingToken).ConfigureAwait(false);
                node = state.Nodes.FirstOrDefault(n => n.Name == node.Name) ?? await RegisterAsync(stoppingToken).ConfigureAwait(false);
                await SyncAsync(state, node, stoppingToken).ConfigureAwait(false);
                status.Applied(state.Revision);
                revision = state.Revision;
                telemetry.Syncs.Add(1, new KeyValuePair<string, object?>("result", "ok"));
                backoff = TimeSpan.FromMilliseconds(200);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // Keep the dataplane as it is (never flush on error) and retry with backoff.
                status.LastError = e.Message;
                _sandboxVerified = null;
                telemetry.Syncs.Add(1, new KeyValuePair<string, object?>("result", "error"));
                LogSyncFailed(e, backoff.TotalMilliseconds);
                await Task.Delay(backoff, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 10_000));
                continue;
            }
            finally
            {
                telemetry.SyncDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }

            try
            {
                await store.WatchAsync(revision, options.ResyncInterval, stoppingToken).ConfigureAwait(false);
                await Task.Delay(options.MinSyncInterval, stoppingToken).ConfigureAwait(false);
            }
            catch (StoreUnavailableException e)
            {
                LogStoreUnavailable(e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task SyncAsync(ClusterState state, ClusterNode node, CancellationToken ct)
    {
        using var activity = telemetry.Activities.StartActivity("mesh.reconcile");
        activity?.SetTag("mesh.revision", state.Revision);

        resolvers.Update(state);
        if (_sandboxVerified is not { } verified || verified.Address != node.IngressSandboxIp
            || Stopwatch.GetElapsedTime(verified.At) >= options.ResyncInterval)
        {
            _sandboxVerified = null;
            await sandbox.EnsureAsync(node.IngressSandboxIp, ct).ConfigureAwait(false);
            _sandboxVerified = (node.IngressSandboxIp, Stopwatch.GetTimestamp());
        }

        if (await iptables.ApplyAsync(NetworkNamespacePath.Current, HostRules.Build(state, options.Network), HostRules.Tables, ct).ConfigureAwait(false))
        {
            Changed("host", state.Revision);
        }

        if (await dataplane.ApplyAsync(state, node, ct).ConfigureAwait(false))
        {
            Changed(dataplane.Name, state.Revision);
        }

        if (await otherDataplane.SandboxAsync(ct).ConfigureAwait(false))
        {
            Changed("other-dataplane", state.Revision);
        }

        var addresses = state.Tasks.Select(t => t.Addresses.GetValueOrDefault(OverlayNetwork.IngressName)).OfType<string>().ToHashSet(StringComparer.Ordinal);
        if (_taskAddresses is not null)
        {
            await sandbox.ForgetNeighboursAsync(addresses.Except(_taskAddresses).Concat(_taskAddresses.Except(addresses)), ct).ConfigureAwait(false);
        }

        _taskAddresses = addresses;

        await SyncTasksAsync(state, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Each local task's namespace: its embedded DNS listeners, the REDIRECT/INPUT and DNS NAT rules, the
    /// east-west VIP backends and its resolv.conf. What Mesh put in a task's namespace goes with the namespace.
    /// </summary>
    private async Task SyncTasksAsync(ClusterState state, CancellationToken ct)
    {
        var wanted = new Dictionary<string, (ServiceTask? Task, ClusterService? Service)>(StringComparer.Ordinal);
        foreach (var task in state.Tasks.Where(t => t.Node == options.Node && t.NetnsPath is not null))
        {
            if (state.Services.FirstOrDefault(s => s.Name == task.Service) is { } service)
            {
                wanted[task.NetnsPath!] = (task, service);
            }
        }

        // Every namespace Mesh put rules into runs a resolver (it is started first): those are the ones to watch.
        foreach (var gone in resolvers.Namespaces.Where(p => !wanted.ContainsKey(p)).ToList())
        {
            wanted[gone] = (null, null);
        }

        foreach (var (path, (task, service)) in wanted)
        {
            if (!File.Exists(path))
            {
                // The runtime has not created it yet, or already removed it with everything in it.
                await resolvers.StopAsync(path).ConfigureAwait(false);
                nft.Forget(new NetworkNamespacePath(path));
                iptables.Forget(new NetworkNamespacePath(path));
                otherDataplane.Forget(new NetworkNamespacePath(path));
                continue;
            }

            if (task is null || service is null)
            {
                // Deregistered but still there: its rules and resolver stay until the runtime deletes the
                // namespace, so connections other nodes still send it while they converge are not refused.
                continue;
            }

            var netns = new NetworkNamespacePath(path);
            try
            {
                var actual = await iptables.ReadAsync(netns, TaskRules.Tables, ct).ConfigureAwait(false);
                var dns = resolvers.Ensure(task, path, TaskRules.DnsPortsIn(actual));
                var rules = TaskRules.Build(task, service, dns);

                if (await iptables.ApplyAsync(netns, rules, actual, TaskRules.Tables, ct).ConfigureAwait(false))
                {
                    Changed("task", state.Revision);
                }

                if (await dataplane.ApplyTaskAsync(state, task, netns, ct).ConfigureAwait(false))
                {
                    Changed("task-vips", state.Revision);
                }

                if (await otherDataplane.TaskAsync(state, netns, ct).ConfigureAwait(false))
                {
                    Changed("other-dataplane", state.Revision);
                }

                if (task.ResolvConfPath is { } resolvConf)
                {
                    await WriteResolvConfAsync(resolvConf, ct).ConfigureAwait(false);
                }
            }
            catch (CommandFailedException e) when (!File.Exists(path))
            {
                LogTaskNamespaceVanished(path, e.Message);
            }
        }
    }

    /// <summary>The task's resolv.conf: 127.0.0.11 as its nameserver, the node's search and options carried over.</summary>
    private async Task WriteResolvConfAsync(string path, CancellationToken ct)
    {
        var node = File.Exists(options.NodeResolvConf) ? await File.ReadAllTextAsync(options.NodeResolvConf, ct).ConfigureAwait(false) : "";
        var content = ResolvConf.ForTask(node);
        if (!File.Exists(path) || await File.ReadAllTextAsync(path, ct).ConfigureAwait(false) != content)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await File.WriteAllTextAsync(path + ".tmp", content, ct).ConfigureAwait(false);
            File.Move(path + ".tmp", path, overwrite: true);
        }
    }

    private async Task<ClusterNode> RegisterAsync(CancellationToken ct)
    {
        var node = await _registration.RegisterAsync(ct).ConfigureAwait(false);
        LogRegistered(node.Name, node.AdvertiseAddress, node.IngressSandboxIp, dataplane.Name);
        return node;
    }

    private void Changed(string what, long revision)
    {
        telemetry.KernelChanges.Add(1, new KeyValuePair<string, object?>("object", what));
        LogKernelChanged(what, revision);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} registered (advertise {AdvertiseAddress}, ingress sandbox {SandboxIp}), dataplane {Dataplane}")]
    private partial void LogRegistered(string node, string advertiseAddress, string sandboxIp, string dataplane);

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied {Object} changes for revision {Revision}")]
    private partial void LogKernelChanged(string @object, long revision);

    [LoggerMessage(Level = LogLevel.Error, Message = "Reconcile failed; dataplane left as it was, retrying in {RetryMs} ms")]
    private partial void LogSyncFailed(Exception exception, double retryMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Store unavailable: {Reason}; serving the last known state")]
    private partial void LogStoreUnavailable(string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task namespace {Path} vanished while syncing: {Reason}")]
    private partial void LogTaskNamespaceVanished(string path, string reason);
}
