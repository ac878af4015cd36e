using System.Globalization;
using System.Net;
using Mesh.Ingress.Balancing;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// A port's backend choice, as the L4 dataplanes make it: round robin (nftables <c>numgen inc</c>, IPVS <c>rr</c>), each
/// new connection or UDP flow takes the next one; or, for a service with <c>--lb maglev</c> or <c>--affinity
/// source-ip</c>, the client's address looked up in a Maglev table (<see cref="MaglevTable"/>), so a client keeps its task
/// and a task leaving moves only its own clients. The list is swapped whole when the state changes: a removed backend
/// gets no new connection from that moment, and connections already made keep their socket (they drain).
/// </summary>
public sealed class BackendRotation
{
    private Choice _choice;
    private uint _next;

    public BackendRotation(IReadOnlyList<IPEndPoint> backends, bool hashed = false) => _choice = Choice.Of(backends, hashed);

    public IReadOnlyList<IPEndPoint> Backends => Volatile.Read(ref _choice).Backends;

    public void Replace(IReadOnlyList<IPEndPoint> backends, bool hashed = false) => Volatile.Write(ref _choice, Choice.Of(backends, hashed));

    /// <summary>The backend for a new connection from <paramref name="client"/>, or null when the service has none (the caller refuses the client).</summary>
    public IPEndPoint? Next(IPAddress? client = null)
    {
        var choice = Volatile.Read(ref _choice);
        if (choice.Backends.Count == 0)
        {
            return null;
        }

        if (choice.Table is { } table && client is not null)
        {
            return choice.ByKey[table.Lookup(client)!];
        }

        var n = Interlocked.Increment(ref _next) - 1;
        return choice.Backends[(int)(n % (uint)choice.Backends.Count)];
    }

    /// <summary>The backends and, when hashed, their Maglev table (built once per change, not per connection).</summary>
    private sealed record Choice(IReadOnlyList<IPEndPoint> Backends, MaglevTable? Table, IReadOnlyDictionary<string, IPEndPoint> ByKey)
    {
        public static Choice Of(IReadOnlyList<IPEndPoint> backends, bool hashed)
        {
            ArgumentNullException.ThrowIfNull(backends);
            if (!hashed || backends.Count == 0)
            {
                return new Choice(backends, null, new Dictionary<string, IPEndPoint>());
            }

            // Keyed by address alone, as the nft and IPVS tables are: the same client lands on the same task on every dataplane.
            var byKey = backends.GroupBy(b => b.Address.ToString()).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
            return new Choice(backends, MaglevTable.Build(byKey.Keys), byKey);
        }
    }
}
