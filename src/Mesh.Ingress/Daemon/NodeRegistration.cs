using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// Registers this daemon's node until the store accepts it. A store that is away is waited for; a store that
/// refuses (the cluster's node cap, an exhausted ingress range, another node on the same advertise address) is told
/// to the operator (log, <c>GET /v1/info</c>'s last error) and asked again with backoff: the daemon stays up and its
/// API keeps answering, so the cause can be fixed (e.g. <c>mesh node rm</c> of a stale node) without a restart.
/// </summary>
public sealed partial class NodeRegistration(IClusterStore store, DaemonOptions options, NodeStatus status, ILogger logger)
{
    /// <summary>The longest wait between two attempts after a refusal.</summary>
    public TimeSpan MaxRefusedDelay { get; init; } = TimeSpan.FromSeconds(10);

    public async Task<ClusterNode> RegisterAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                return await store.RegisterNodeAsync(new NodeSpec { Name = options.Node, AdvertiseAddress = options.AdvertiseAddress }, ct).ConfigureAwait(false);
            }
            catch (StoreUnavailableException e)
            {
                LogStoreUnavailable(logger, e.Message);
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5_000));
            }
            catch (Exception e) when (e is ConflictException or ValidationException or NotFoundException)
            {
                status.LastError = $"node {options.Node} could not register: {e.Message}";
                LogRefused(logger, options.Node, e.Message, delay.TotalMilliseconds);
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, MaxRefusedDelay.TotalMilliseconds));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Store unavailable: {Reason}; retrying the registration")]
    private static partial void LogStoreUnavailable(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The store refused to register node {Node}: {Reason}. Retrying in {RetryMs} ms; the API stays up")]
    private static partial void LogRefused(ILogger logger, string node, string reason, double retryMs);
}
