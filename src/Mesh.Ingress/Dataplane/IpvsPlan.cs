using System.Globalization;
using System.Net;
using Mesh.Ipvs;

namespace Mesh.Ingress.Dataplane;

/// <summary>One IPVS fwmark service Mesh wants in a namespace, and its real servers (what it is for: <paramref name="Name"/>).</summary>
public sealed record IpvsDesiredService(string Name, IpvsService Service, IReadOnlyList<IpvsDestination> Destinations)
{
    /// <summary>A fwmark service (scheduler from <paramref name="options"/>) with one Masq real server per address, port 0 (the packet's port is kept).</summary>
    public static IpvsDesiredService For(string name, uint mark, IEnumerable<string> addresses, IpvsOptions options) => new(
        name,
        IpvsService.ForFirewallMark(mark, scheduler: options.Scheduler),
        addresses.Select(a => new IpvsDestination(IPAddress.Parse(a), 0) { ForwardingMethod = ForwardingMethod.Masquerade, Weight = 1 }).ToArray());

    /// <summary>
    /// As above, with the set's unhealthy tasks kept at weight 0 (no new connections, and the ones they have go on),
    /// and the service's policy: <c>--lb maglev</c> → the <c>mh</c> scheduler (Maglev hashing of the source address, the
    /// kernel's own table of 65537 buckets); <c>--affinity source-ip</c> otherwise → persistence
    /// (<see cref="PersistenceSeconds"/>): a client's new connections go where its last one went while any is younger.
    /// </summary>
    public static IpvsDesiredService For(string name, uint mark, BackendSet backends, IpvsOptions options)
    {
        ArgumentNullException.ThrowIfNull(backends);
        var service = For(name, mark, backends.Addresses, options);
        var ipvs = backends.Service.LoadBalancing == Discovery.Model.LoadBalancing.Maglev
            ? service.Service with { Scheduler = IpvsSchedulers.Maglev }
            : backends.Service.Affinity == Discovery.Model.Affinity.SourceIp
                ? service.Service with { Flags = IpvsServiceFlags.Persistent, Timeout = PersistenceSeconds }
                : service.Service;
        return service with
        {
            Service = ipvs,
            Destinations = [.. service.Destinations, .. backends.Unhealthy.Select(a => new IpvsDestination(IPAddress.Parse(a), 0) { ForwardingMethod = ForwardingMethod.Masquerade, Weight = 0 })],
        };
    }

    /// <summary>How long IPVS keeps a source-ip client on its task after its last connection ends (ipvsadm's default).</summary>
    public const uint PersistenceSeconds = 300;
}

/// <summary>A service and its real servers as the kernel reports them.</summary>
public sealed record IpvsActualService(IpvsService Service, IReadOnlyList<IpvsDestination> Destinations);

public enum IpvsChangeKind
{
    NewService,
    UpdateService,
    DeleteService,
    NewDestination,
    UpdateDestination,
    DeleteDestination,
}

/// <summary>One netlink operation the diff asks for.</summary>
public sealed record IpvsChange(IpvsChangeKind Kind, IpvsService Service, IpvsDestination? Destination = null)
{
    public override string ToString() => Destination is null
        ? string.Create(CultureInfo.InvariantCulture, $"{Kind} {Service.Key} {Service.Scheduler}")
        : string.Create(CultureInfo.InvariantCulture, $"{Kind} {Service.Key} -> {Destination.Address} w={Destination.Weight}");
}

/// <summary>
/// When each real server that is no longer wanted was set to weight 0 (per namespace), so it is removed once the
/// drain period has passed. In memory only: after a restart a server found at weight 0 starts a fresh drain period.
/// </summary>
public sealed class IpvsDrainTracker
{
    private readonly Dictionary<(IpvsServiceKey Service, IPAddress Address, ushort Port), TimeSpan> _since = [];

    public int Count => _since.Count;

    internal bool TryGet(IpvsServiceKey service, IpvsDestination d, out TimeSpan since) => _since.TryGetValue((service, d.Address, d.Port), out since);

    internal void Start(IpvsServiceKey service, IpvsDestination d, TimeSpan now) => _since[(service, d.Address, d.Port)] = now;

    internal void Stop(IpvsServiceKey service, IpvsDestination d) => _since.Remove((service, d.Address, d.Port));

    internal void Forget(IpvsServiceKey service)
    {
        foreach (var key in _since.Keys.Where(k => k.Service == service).ToList())
        {
            _since.Remove(key);
        }
    }

    /// <summary>Drops entries of services or servers that no longer exist in the kernel.</summary>
    internal void Retain(IEnumerable<IpvsActualService> actual)
    {
        var present = actual.SelectMany(s => s.Destinations.Select(d => (s.Service.Key, d.Address, d.Port))).ToHashSet();
        foreach (var key in _since.Keys.Where(k => !present.Contains(k)).ToList())
        {
            _since.Remove(key);
        }
    }
}

/// <summary>
/// Desired IPVS services vs what the kernel has → the operations that converge it, in an order the kernel accepts
/// in one batch (a service before its destinations). Only services <c>owned</c> says are Mesh's are ever changed.
/// A real server that is no longer wanted is first set to weight 0 (drained), and removed on a later pass once
/// <c>drainPeriod</c> has passed; a whole service that is no longer wanted is removed at once.
/// </summary>
public static class IpvsDiff
{
    public static IReadOnlyList<IpvsChange> Plan(
        IReadOnlyList<IpvsDesiredService> desired,
        IReadOnlyList<IpvsActualService> actual,
        Func<IpvsService, bool> owned,
        IpvsDrainTracker drains,
        TimeSpan now,
        TimeSpan drainPeriod)
    {
        var changes = new List<IpvsChange>();
        var byKey = actual.GroupBy(a => a.Service.Key).ToDictionary(g => g.Key, g => g.First());
        drains.Retain(actual);
        foreach (var want in desired)
        {
            if (!byKey.TryGetValue(want.Service.Key, out var have))
            {
                changes.Add(new IpvsChange(IpvsChangeKind.NewService, want.Service));
                changes.AddRange(want.Destinations.Select(d => new IpvsChange(IpvsChangeKind.NewDestination, want.Service, d)));
                continue;
            }

            if (!have.Service.ConfigurationEquals(want.Service))
            {
                changes.Add(new IpvsChange(IpvsChangeKind.UpdateService, want.Service));
            }

            var haveDests = have.Destinations.ToDictionary(d => (d.Address, d.Port));
            foreach (var d in want.Destinations)
            {
                if (!haveDests.TryGetValue((d.Address, d.Port), out var current))
                {
                    changes.Add(new IpvsChange(IpvsChangeKind.NewDestination, want.Service, d));
                }
                else if (!current.ConfigurationEquals(d))
                {
                    changes.Add(new IpvsChange(IpvsChangeKind.UpdateDestination, want.Service, d));
                }

                drains.Stop(want.Service.Key, d);
            }

            var wanted = want.Destinations.Select(d => (d.Address, d.Port)).ToHashSet();
            foreach (var d in have.Destinations.Where(d => !wanted.Contains((d.Address, d.Port))))
            {
                if (drainPeriod <= TimeSpan.Zero)
                {
                    changes.Add(new IpvsChange(IpvsChangeKind.DeleteDestination, want.Service, d));
                }
                else if (d.Weight != 0)
                {
                    changes.Add(new IpvsChange(IpvsChangeKind.UpdateDestination, want.Service, d with { Weight = 0 }));
                    drains.Start(want.Service.Key, d, now);
                }
                else if (!drains.TryGet(want.Service.Key, d, out var since))
                {
                    drains.Start(want.Service.Key, d, now); // found drained (e.g. after a restart): a fresh period
                }
                else if (now - since >= drainPeriod)
                {
                    changes.Add(new IpvsChange(IpvsChangeKind.DeleteDestination, want.Service, d));
                    drains.Stop(want.Service.Key, d);
                }
            }
        }

        var wantedKeys = desired.Select(d => d.Service.Key).ToHashSet();
        foreach (var gone in actual.Where(a => owned(a.Service) && !wantedKeys.Contains(a.Service.Key)))
        {
            changes.Add(new IpvsChange(IpvsChangeKind.DeleteService, gone.Service));
            drains.Forget(gone.Service.Key);
        }

        return changes;
    }

    /// <summary>Whether some real server is still draining (a later pass will remove it).</summary>
    public static bool Draining(IpvsDrainTracker drains) => drains.Count > 0;

    public static IpvsBatch ToBatch(IEnumerable<IpvsChange> changes)
    {
        var batch = new IpvsBatch();
        foreach (var c in changes)
        {
            _ = c.Kind switch
            {
                IpvsChangeKind.NewService => batch.NewService(c.Service),
                IpvsChangeKind.UpdateService => batch.UpdateService(c.Service),
                IpvsChangeKind.DeleteService => batch.DeleteService(c.Service),
                IpvsChangeKind.NewDestination => batch.NewDestination(c.Service, c.Destination!),
                IpvsChangeKind.UpdateDestination => batch.UpdateDestination(c.Service, c.Destination!),
                IpvsChangeKind.DeleteDestination => batch.DeleteDestination(c.Service, c.Destination!),
                _ => throw new ArgumentOutOfRangeException(nameof(changes), c.Kind, "unknown change"),
            };
        }

        return batch;
    }
}
