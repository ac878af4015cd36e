using System.Net;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// One <c>proxy=v2</c> published port as the relay serves it: what it listens on in the sandbox, whose service it
/// is, and the backends (the service's running tasks' ingress addresses on the target port, in the stable order
/// the L4 dataplanes round-robin over, without the tasks this node finds unhealthy).
/// </summary>
public sealed record RelayPort(TransportProtocol Protocol, int Published, string Service, int Target, IReadOnlyList<IPEndPoint> Backends)
{
    /// <summary>Backends chosen by a hash of the client's address (<c>--lb maglev</c> or <c>--affinity source-ip</c>), not round robin.</summary>
    public bool Hashed { get; init; }

    /// <summary>Protocol and published port: at most one service publishes it (the store refuses a second).</summary>
    public (TransportProtocol Protocol, int Published) Key => (Protocol, Published);

    public override string ToString() => $"{Published}/{(Protocol == TransportProtocol.Udp ? "udp" : "tcp")} ({Service})";

    public bool Equals(RelayPort? other) =>
        other is not null && Protocol == other.Protocol && Published == other.Published && Service == other.Service
        && Target == other.Target && Hashed == other.Hashed && Backends.SequenceEqual(other.Backends);

    public override int GetHashCode() => HashCode.Combine(Protocol, Published, Service, Target, Backends.Count);
}

/// <summary>What the relay of a node should serve for a cluster state: a pure function, unit-tested.</summary>
public static class RelayPlan
{
    /// <param name="health">This node's health verdicts: unhealthy tasks get no new connection (fail open when all are,
    /// as the L4 dataplanes: <see cref="BackendSet.Of"/>).</param>
    public static IReadOnlyList<RelayPort> Build(ClusterState state, HealthChecks.BackendHealth? health = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        var tasks = BackendSet.RunningTasksByService(state);
        var ports = new List<RelayPort>();
        foreach (var service in state.Services.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            var relayed = service.Ports.Where(p => p.Mode == PublishMode.Ingress && p.Proxy == ProxyProtocol.V2).ToList();
            if (relayed.Count == 0)
            {
                continue;
            }

            // Addresses come from the store, which validated them; one that does not parse is skipped, not trusted.
            var addresses = BackendSet.For(tasks, service, OverlayNetwork.IngressName, health).Addresses
                .Select(a => IPAddress.TryParse(a, out var ip) ? ip : null).OfType<IPAddress>().ToArray();
            foreach (var port in relayed.OrderBy(p => p.Protocol).ThenBy(p => p.Published))
            {
                ports.Add(new RelayPort(port.Protocol, port.Published, service.Name, port.Target,
                    addresses.Select(ip => new IPEndPoint(ip, port.Target)).ToArray())
                {
                    Hashed = service.LoadBalancing == LoadBalancing.Maglev || service.Affinity == Affinity.SourceIp,
                });
            }
        }

        return ports;
    }
}
