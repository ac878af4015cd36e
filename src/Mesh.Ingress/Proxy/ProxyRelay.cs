using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ipvs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// The node's PROXY protocol v2 relay: one listener per <c>proxy=v2</c> published port, inside the ingress sandbox,
/// following the store. The node DNATs those ports into the sandbox like any other (keeping the client's source
/// address), but the sandbox's nftables table or IPVS rules do not take them (<see cref="IngressSandboxTable.MeshPorts"/>),
/// so the packets are delivered locally, to the relay. Every revision is turned into a <see cref="RelayPlan"/>:
/// listeners are opened for new ports, closed for ports gone (their open connections finish), and given the new
/// backend list otherwise. The same on both dataplanes. When the sandbox namespace is recreated, every listener is
/// reopened in the new one (a socket stays in the namespace it was made in).
/// </summary>
public sealed partial class ProxyRelay(
    IClusterStore store,
    IngressSandbox sandbox,
    DaemonOptions options,
    ProxyRelayMetrics metrics,
    ILoggerFactory loggers,
    ILogger<ProxyRelay> logger,
    HealthChecks.TaskHealthMonitor? health = null) : BackgroundService
{
    private static readonly TimeSpan Retry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan WatchTimeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<(TransportProtocol, int), IPortRelay> _relays = [];
    private readonly IPAddress _nodeAddress = IPAddress.TryParse(options.AdvertiseAddress, out var a) ? a : IPAddress.Any;
    private SandboxSockets? _sockets;
    private NetworkNamespaceId? _sandboxId;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            long applied = -1;
            long healthApplied = -1;
            var complete = true;
            ClusterState? state = null;
            var healthOnly = false;
            while (!stoppingToken.IsCancellationRequested)
            {
                long revision;
                try
                {
                    // A health verdict alone re-plans from the state already read (as the node loop and the L7 entry).
                    var healthVersion = health?.Version ?? 0;
                    state = healthOnly && state is not null ? state : await store.GetStateAsync(stoppingToken).ConfigureAwait(false);
                    revision = state.Revision;
                    if (revision != applied || healthVersion != healthApplied || !complete)
                    {
                        complete = await ApplyAsync(RelayPlan.Build(state, health?.Snapshot), revision).ConfigureAwait(false);
                        (applied, healthApplied) = (revision, healthVersion);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    LogStateFailed(e, Retry.TotalSeconds);
                    healthOnly = false;
                    await Task.Delay(Retry, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                try
                {
                    // A port that could not be opened (the sandbox not made yet, the port taken) is retried soon.
                    healthOnly = await HealthChecks.StoreOrHealthChange.WaitAsync(store, revision, complete ? WatchTimeout : Retry, health, healthApplied, stoppingToken).ConfigureAwait(false);
                }
                catch (StoreUnavailableException e)
                {
                    healthOnly = false;
                    LogStoreUnavailable(e.Message);
                    await Task.Delay(Retry, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            await CloseAllAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Makes the listeners match <paramref name="plan"/>; false when some port could not be opened yet.</summary>
    internal async Task<bool> ApplyAsync(IReadOnlyList<RelayPort> plan, long revision)
    {
        if (plan.Count == 0 && _relays.Count == 0)
        {
            return true; // nothing relayed: the sandbox is not even looked at
        }

        NetworkNamespaceId id;
        try
        {
            id = NetworkNamespace.Identify(sandbox.Netns.Path!);
        }
        catch (IOException e)
        {
            LogSandboxMissing(sandbox.Netns.ToString(), e.Message);
            return false;
        }

        if (_sandboxId is { } known && known != id)
        {
            LogSandboxChanged(sandbox.Netns.ToString(), _relays.Count);
            await CloseAllAsync().ConfigureAwait(false);
        }

        _sandboxId = id;
        _sockets ??= new SandboxSockets(sandbox.Netns.Path!);
        var wanted = plan.ToDictionary(p => p.Key);
        foreach (var (key, relay) in _relays.Where(r => !wanted.ContainsKey(r.Key)).ToList())
        {
            _relays.Remove(key);
            await relay.DisposeAsync().ConfigureAwait(false);
            LogClosed(key.Item2, Proto(key.Item1), revision);
        }

        var complete = true;
        foreach (var port in plan)
        {
            if (_relays.TryGetValue(port.Key, out var existing))
            {
                if (!existing.Port.Equals(port))
                {
                    existing.Update(port);
                    LogUpdated(port.ToString(), port.Backends.Count, revision);
                }

                continue;
            }

            try
            {
                var relayLogger = loggers.CreateLogger(port.Protocol == TransportProtocol.Udp ? typeof(UdpRelay).FullName! : typeof(TcpRelay).FullName!);
                _relays[port.Key] = port.Protocol == TransportProtocol.Udp
                    ? UdpRelay.Open(port, _sockets, _nodeAddress, metrics, relayLogger)
                    : TcpRelay.Open(port, _sockets, _nodeAddress, metrics, relayLogger);
                LogOpened(port.ToString(), sandbox.Netns.ToString(), port.Backends.Count, revision);
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
                LogOpenFailed(port.ToString(), sandbox.Netns.ToString(), e.Message, Retry.TotalSeconds);
                complete = false;
            }
        }

        return complete;
    }

    private async Task CloseAllAsync()
    {
        foreach (var relay in _relays.Values)
        {
            await relay.DisposeAsync().ConfigureAwait(false);
        }

        _relays.Clear();
        _sockets?.Dispose();
        _sockets = null;
        _sandboxId = null;
    }

    private static string Proto(TransportProtocol protocol) => protocol == TransportProtocol.Udp ? "udp" : "tcp";
}
