using System.Globalization;
using Mesh.Discovery.Model;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// The service the first-packet load goes to: the last of <see cref="ScaleScenario.MakeState"/>'s N services (last by
/// name, so its elements come last in every map and its jump last in the naive chain), with its tasks moved onto the
/// ingress subnet (10.255.1.1 upward) so that the sandbox's source-nat rule applies to them as it does in a cluster
/// (the other services keep <see cref="ScaleScenario"/>'s addresses, outside the subnet: nothing routes to them).
/// </summary>
public sealed record FirstPacketTarget(string Service, int PublishedPort, int TargetPort, IReadOnlyList<string> Tasks)
{
    /// <summary>N services × T tasks with the last service's tasks re-addressed, and that service.</summary>
    public static (ClusterState State, FirstPacketTarget Target) Make(int services, int tasksPerService)
    {
        if (tasksPerService > 254)
            throw new ArgumentOutOfRangeException(nameof(tasksPerService), tasksPerService, "the target's tasks are 10.255.1.1-254");
        var state = ScaleScenario.MakeState(services, tasksPerService);
        var last = state.Services[^1];
        var slot = 0;
        var tasks = state.Tasks.Select(t => t.Service != last.Name ? t : t with
        {
            Addresses = new Dictionary<string, string> { [OverlayNetwork.IngressName] = string.Create(CultureInfo.InvariantCulture, $"10.255.1.{++slot}") },
        }).ToArray();
        var addresses = tasks.Where(t => t.Service == last.Name).Select(t => t.Addresses[OverlayNetwork.IngressName]).ToList();
        var port = last.Ports[0];
        return (state with { Tasks = tasks }, new FirstPacketTarget(last.Name, port.Published, port.Target, addresses));
    }
}
