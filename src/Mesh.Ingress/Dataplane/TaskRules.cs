using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk step 6, inside a task's namespace: traffic arriving on the task's ingress address for a
/// published port is redirected to the target port; on the ingress address only target ports (and replies)
/// are accepted, as Docker does.
/// </summary>
public static class TaskRules
{
    public const string Redirect = "MESH-TASK";
    public const string Input = "MESH-TASK-INPUT";

    public static IReadOnlyList<string> Tables { get; } = ["filter", "nat"];

    public static IptablesRuleset Build(ServiceTask task, ClusterService service)
    {
        if (!task.Addresses.TryGetValue(OverlayNetwork.IngressName, out var address) || service.Ports.Count == 0)
        {
            return IptablesRuleset.Empty;
        }

        var redirect = new List<string>();
        var input = new List<string>();
        foreach (var port in service.Ports.OrderBy(p => p.Protocol).ThenBy(p => p.Published))
        {
            var proto = HostRules.Proto(port.Protocol);
            redirect.Add(string.Create(CultureInfo.InvariantCulture, $"-d {address}/32 -p {proto} -m {proto} --dport {port.Published} -j REDIRECT --to-ports {port.Target}"));
        }

        foreach (var (proto, target) in service.Ports.Select(p => (HostRules.Proto(p.Protocol), p.Target)).Distinct().Order())
        {
            input.Add(string.Create(CultureInfo.InvariantCulture, $"-d {address}/32 -p {proto} -m {proto} --dport {target} -j ACCEPT"));
        }

        input.Add($"-d {address}/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        input.Add($"-d {address}/32 -j DROP");
        return new IptablesRuleset(
            [new IptablesChain("nat", Redirect, redirect), new IptablesChain("filter", Input, input)],
            [new IptablesJump("nat", "PREROUTING", $"-j {Redirect}"), new IptablesJump("filter", "INPUT", $"-j {Input}")]);
    }
}
