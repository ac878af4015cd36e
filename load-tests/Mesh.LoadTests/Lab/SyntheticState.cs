using System.Globalization;
using Mesh.Discovery.Model;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// The made-up cluster state of the scenarios that need N services × T tasks and no cluster (scale, first-packet,
/// remote-state): service i is <c>s{i:D5}</c>, publishing TCP 20000 + i to 80 with firewall mark 0x100 + i; its tasks
/// <c>s{i:D5}.1</c> … <c>.T</c> are on the ingress network, the task of index j (i × T + k) on node <c>node{j mod 3}</c>.
/// The scenarios differ only in the task addresses (each numbers them its own way) and in whether the nodes are listed.
/// </summary>
internal static class SyntheticState
{
    /// <summary>How many nodes the tasks are spread over, round robin by index.</summary>
    public const int NodeCount = 3;

    public static string NodeName(int index) => "node" + (index % NodeCount).ToString(CultureInfo.InvariantCulture);

    /// <summary>The state at revision 1, task j addressed <paramref name="taskAddress"/>(j), with <paramref name="nodes"/> (none: not listed).</summary>
    public static ClusterState Make(int services, int tasksPerService, Func<int, string> taskAddress, IReadOnlyList<ClusterNode>? nodes = null)
    {
        var list = new ClusterService[services];
        var tasks = new ServiceTask[services * tasksPerService];
        for (var i = 0; i < services; i++)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"s{i:D5}");
            list[i] = new ClusterService { Name = name, Ports = [new PublishedPort(20000 + i, 80)], FirewallMark = 0x100 + i };
            for (var k = 0; k < tasksPerService; k++)
            {
                var index = i * tasksPerService + k;
                tasks[index] = Task(name, k + 1, index, taskAddress(index));
            }
        }

        return new ClusterState { Revision = 1, Nodes = nodes ?? [], Services = list, Tasks = tasks };
    }

    /// <summary>Task <paramref name="slot"/> of <paramref name="service"/>, of index <paramref name="index"/> (its node), at <paramref name="address"/> on the ingress network.</summary>
    public static ServiceTask Task(string service, int slot, int index, string address) => new()
    {
        Name = string.Create(CultureInfo.InvariantCulture, $"{service}.{slot}"),
        Service = service,
        Node = NodeName(index),
        Addresses = new Dictionary<string, string> { [OverlayNetwork.IngressName] = address },
    };
}
