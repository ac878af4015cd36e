using System.Net;
using System.Runtime.CompilerServices;
using Mesh.Ingress.Balancing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Mesh.Ingress.Http;

/// <summary>
/// YARP's load-balancing policy for <c>--lb maglev</c> and <c>--affinity source-ip</c>: the client's address (the TCP
/// peer of the L7 entry, never a forwarding header a client could forge) looked up in a Maglev table over the
/// cluster's available destinations. YARP hands a new list whenever destinations or their health change, so the
/// table is built once per list (kept beside it, weakly) rather than per request.
/// </summary>
public sealed class MaglevLoadBalancingPolicy : ILoadBalancingPolicy
{
    public const string PolicyName = "Maglev";

    private readonly ConditionalWeakTable<IReadOnlyList<DestinationState>, Lookup> _tables = [];

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(availableDestinations);
        if (availableDestinations.Count <= 1)
        {
            return availableDestinations.Count == 0 ? null : availableDestinations[0];
        }

        var lookup = _tables.GetValue(availableDestinations, static list => new Lookup(list));
        var client = context.Connection.RemoteIpAddress ?? IPAddress.Any;
        return lookup.ByKey[lookup.Table.Lookup(client)!];
    }

    private sealed class Lookup(IReadOnlyList<DestinationState> destinations)
    {
        public IReadOnlyDictionary<string, DestinationState> ByKey { get; } = destinations.ToDictionary(d => d.DestinationId, StringComparer.Ordinal);

        public MaglevTable Table { get; } = MaglevTable.Build(destinations.Select(d => d.DestinationId));
    }
}
