using Mesh.Ipvs;

namespace Mesh.Ingress.Telemetry.L4;

/// <summary>
/// ipvs dataplane: the sandbox's fwmark services and their real servers over IPVS generic netlink, as
/// <c>ipvsadm -Ln</c> and <c>--stats</c> show them: connections now (ActiveConn, InActConn) and the cumulative counters (IPVS_DEST_ATTR_STATS64). One destination dump per known
/// service mark; real servers of unknown tasks are left out.
/// </summary>
public sealed class IpvsBackendSource(string sandboxNetns) : IL4BackendSource
{
    public string Name => "ipvs";

    public IEnumerable<L4BackendKey> Known(L4BackendDirectory directory) => directory?.ByIpvs.Values ?? throw new ArgumentNullException(nameof(directory));

    public IReadOnlyList<L4BackendSample> Read(L4BackendDirectory directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var marks = directory.ByIpvs.Keys.Select(k => k.Mark).ToHashSet();
        var samples = new List<L4BackendSample>();
        using var ipvs = IpvsHandle.Open(sandboxNetns);
        foreach (var service in ipvs.GetServices().Where(s => s.IsFirewallMark && marks.Contains(s.FirewallMark)))
        {
            foreach (var destination in ipvs.GetDestinations(service))
            {
                if (directory.ByIpvs.TryGetValue((service.FirewallMark, destination.Address), out var key))
                {
                    samples.Add(Sample(key, destination));
                }
            }
        }

        return samples;
    }

    public static L4BackendSample Sample(L4BackendKey key, IpvsDestination destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var stats = destination.Stats ?? IpvsStats.Zero;
        return new L4BackendSample(key, destination.ActiveConnections, destination.InactiveConnections)
        {
            Counters = new L4BackendCounters(Clamp(stats.Connections), Clamp(stats.InPackets), Clamp(stats.OutPackets), Clamp(stats.InBytes), Clamp(stats.OutBytes)),
        };
    }

    private static long Clamp(ulong value) => value > long.MaxValue ? long.MaxValue : (long)value;
}
