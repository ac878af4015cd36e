using System.Net;
using Mesh.Discovery.Model;

namespace Mesh.Discovery.Naming;

/// <summary>
/// What a lower-case name stands for on a set of networks: the single definition of the forward names
/// (<see cref="ClusterDnsAuthority"/>'s rules). The query path reads its results through <see cref="NetworkNames"/>,
/// which calls this once per name and network set per state.
/// </summary>
internal static class NameResolution
{
    /// <summary>The addresses a name stands for on <paramref name="networks"/>, or null; <paramref name="owned"/> says whether the name is in our namespace at all.</summary>
    public static List<IPAddress>? Resolve(ServiceNameIndex index, string name, string[] networks, out bool owned)
    {
        // Ours: single labels, tasks.*, and <service>.<anything> (task names, even of tasks already gone).
        owned = index.Owns(name);
        if (index.FindService(name) is { } service)
        {
            if (!Visible(service, networks))
            {
                return null; // another network's name: as if it did not exist here
            }

            owned = true;
            return service.Mode == ServiceMode.Vip
                ? networks.Select(n => service.Vips.GetValueOrDefault(n)).OfType<string>().Select(IPAddress.Parse).ToList()
                : Shuffled(TaskAddresses(index.TasksOf(service.Name.ToLowerInvariant()), networks));
        }

        if (name.StartsWith("tasks.", StringComparison.Ordinal) && index.FindService(name[6..]) is { } tasksOf)
        {
            return Visible(tasksOf, networks) ? TaskAddresses(index.TasksOf(tasksOf.Name.ToLowerInvariant()), networks) : null;
        }

        var tasks = index.Tasks.TryGetValue(name, out var task) ? [task] : index.TaskAliases.GetValueOrDefault(name);
        if (tasks is not null)
        {
            var mine = TaskAddresses(tasks, networks);
            owned |= mine.Count > 0;
            return mine.Count > 0 ? mine : null;
        }

        return null;
    }

    /// <summary>True when <see cref="Resolve"/> answers a name from a service in dnsrr mode (whose answers are shuffled per query).</summary>
    public static bool IsRoundRobin(ServiceNameIndex index, string name) => index.FindService(name) is { Mode: ServiceMode.Dnsrr };

    public static bool Visible(ClusterService service, string[] networks) => service.Networks.Any(networks.Contains);

    public static List<IPAddress> TaskAddresses(IEnumerable<ServiceTask> tasks, string[] networks) =>
        tasks.SelectMany(t => networks.Select(n => t.Addresses.GetValueOrDefault(n))).OfType<string>().Select(IPAddress.Parse).ToList();

    private static List<IPAddress> Shuffled(List<IPAddress> list)
    {
        Random.Shared.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list));
        return list;
    }
}
