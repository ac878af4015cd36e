using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Dataplane;

/// <summary>The ports of a task's embedded DNS listeners (inside its namespace, on 127.0.0.11).</summary>
public sealed record DnsPorts(int Udp, int Tcp);

/// <summary>
/// Packet walk step 6, inside a task's namespace: traffic arriving on the task's ingress address for a
/// published port is redirected to the target port; on the ingress address only target ports (and replies)
/// are accepted, as Docker does. With the embedded DNS, port 53 of 127.0.0.11 is DNATed to the resolver's
/// listeners (and their answers SNATed back to :53), as in seed 002.
/// </summary>
public static class TaskRules
{
    public const string Redirect = "MESH-TASK";
    public const string Input = "MESH-TASK-INPUT";
    public const string DnsOutput = "MESH-DNS-OUTPUT";
    public const string DnsPostrouting = "MESH-DNS-POSTROUTING";
    public const string EmbeddedResolver = "127.0.0.11";

    public static IReadOnlyList<string> Tables { get; } = ["filter", "nat"];

    public static IptablesRuleset Build(ServiceTask task, ClusterService service, DnsPorts? dns = null)
    {
        var ingress = Ingress(task, service);
        if (dns is null)
        {
            return ingress;
        }

        var resolver = $"{EmbeddedResolver}/32";
        return new IptablesRuleset(
            [
                .. ingress.Chains,
                new IptablesChain("nat", DnsOutput,
                [
                    string.Create(CultureInfo.InvariantCulture, $"-d {resolver} -p tcp -m tcp --dport 53 -j DNAT --to-destination {EmbeddedResolver}:{dns.Tcp}"),
                    string.Create(CultureInfo.InvariantCulture, $"-d {resolver} -p udp -m udp --dport 53 -j DNAT --to-destination {EmbeddedResolver}:{dns.Udp}"),
                ]),
                new IptablesChain("nat", DnsPostrouting,
                [
                    string.Create(CultureInfo.InvariantCulture, $"-s {resolver} -p tcp -m tcp --sport {dns.Tcp} -j SNAT --to-source :53"),
                    string.Create(CultureInfo.InvariantCulture, $"-s {resolver} -p udp -m udp --sport {dns.Udp} -j SNAT --to-source :53"),
                ]),
            ],
            [
                .. ingress.Jumps,
                new IptablesJump("nat", "OUTPUT", $"-d {resolver} -j {DnsOutput}"),
                new IptablesJump("nat", "POSTROUTING", $"-d {resolver} -j {DnsPostrouting}"),
            ]);
    }

    /// <summary>The DNS listener ports the rules in a namespace point at, so a restarted daemon can bind the same ones.</summary>
    public static DnsPorts? DnsPortsIn(IptablesSave save)
    {
        var rules = save.OwnedChains.GetValueOrDefault(("nat", DnsOutput));
        int? Port(string proto) => rules?
            .Where(r => r.Contains($"-p {proto} ", StringComparison.Ordinal))
            .Select(r => r[(r.LastIndexOf(':') + 1)..])
            .Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : (int?)null)
            .FirstOrDefault();
        return Port("udp") is { } udp && Port("tcp") is { } tcp ? new DnsPorts(udp, tcp) : null;
    }

    private static IptablesRuleset Ingress(ServiceTask task, ClusterService service)
    {
        if (!task.Addresses.TryGetValue(OverlayNetwork.IngressName, out var address) || (service.Ports.Count == 0 && service.Routes.Count == 0))
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

        // The L7 entry connects from the sandbox straight to a route's target port (no REDIRECT).
        var targets = service.Ports.Select(p => (HostRules.Proto(p.Protocol), p.Target)).Concat(service.Routes.Select(r => ("tcp", r.Target)));
        foreach (var (proto, target) in targets.Distinct().Order())
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
