using System.Globalization;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk step 6 and the embedded DNS's NAT on the nftables dataplane: <see cref="TaskRules"/> as Mesh's own table
/// <c>ip mesh-task</c> in the task's namespace (the <c>ip mesh</c> table there is <see cref="TaskServiceTable"/>'s). A
/// published port arriving on the task's ingress address is DNATed to that address and the target port (what REDIRECT
/// does for a packet already addressed to the namespace); on that address only target ports and replies are accepted;
/// port 53 of 127.0.0.11 goes to the resolver's listeners and their answers leave from :53. All base chains: a task's
/// rules change only with its service's ports, and such a change rebuilds the small table in the same single batch.
/// </summary>
public static class TaskIngressTable
{
    public const string Name = "mesh-task";
    public const string DnsOutputChain = "dns-output";

    /// <summary>The table for the task, or null when it needs none (no published port or route, no embedded DNS).</summary>
    public static NftDesiredTable? Build(ServiceTask task, ClusterService service, DnsPorts? dns = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(service);
        var chains = new List<NftChain>();
        if (task.Addresses.TryGetValue(OverlayNetwork.IngressName, out var text) && (service.Ports.Count > 0 || service.Routes.Count > 0))
        {
            var address = IPAddress.Parse(text);
            chains.Add(Redirect(address, service));
            chains.Add(Input(address, service));
        }

        if (dns is not null)
        {
            chains.AddRange(Dns(dns));
        }

        return chains.Count == 0 ? null : new NftDesiredTable(Ip, Name, [], chains, []);
    }

    /// <summary>The DNS listener ports the table's <see cref="DnsOutputChain"/> rules point at (read back after a restart), or null.</summary>
    public static DnsPorts? DnsPortsIn(IEnumerable<Rule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        int? tcp = null, udp = null;
        foreach (var rule in rules.Where(r => r.Chain == DnsOutputChain))
        {
            var protoCmp = rule.Expressions.OfType<Cmp>().FirstOrDefault(c => c.Data.Length == 1);
            var portImmediate = rule.Expressions.OfType<Immediate>().LastOrDefault(i => i.Data.Length == 2);
            if (protoCmp is null || portImmediate is null)
            {
                continue;
            }

            var proto = protoCmp.Data.Span[0];
            var value = (portImmediate.Data.Span[0] << 8) | portImmediate.Data.Span[1];
            if (proto == 6)
            {
                tcp = value;
            }
            else if (proto == 17)
            {
                udp = value;
            }
        }

        return udp is { } u && tcp is { } t ? new DnsPorts(u, t) : null;
    }

    private const Family Ip = Family.Ip;
    private const uint CtEstablishedRelated = 0x2 | 0x4; // NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)

    private static Expression[] DestinationIs(IPAddress address) => [new Payload(PayloadBase.Network, 16, 4), new Cmp(CmpOp.Eq, NftData.Ipv4(address))];

    private static NftChain Redirect(IPAddress address, ClusterService service)
    {
        var rules = service.Ports.OrderBy(p => p.Protocol).ThenBy(p => p.Published).Select(port => new NftRule(
            string.Create(CultureInfo.InvariantCulture, $"ip daddr {address} {HostRules.Proto(port.Protocol)} dport {port.Published} dnat to {address}:{port.Target}"),
            [
                .. DestinationIs(address),
                .. HostNatTable.PortMatch(port.Protocol, checked((ushort)port.Published)),
                new Immediate(NftData.Ipv4(address)),
                new Immediate(NftData.Be16(checked((ushort)port.Target)), Registers.R2),
                new Nat(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R2),
            ])).ToList();
        return new NftChain("prerouting", rules, new BaseChain("nat", Hook.Prerouting, BaseChain.PriorityDstNat));
    }

    private static NftChain Input(IPAddress address, ClusterService service)
    {
        // The L7 entry connects from the sandbox straight to a route's target port (no DNAT).
        var targets = service.Ports.Select(p => (p.Protocol, p.Target)).Concat(service.Routes.Select(r => (TransportProtocol.Tcp, r.Target)));
        var rules = targets.Distinct().OrderBy(t => HostRules.Proto(t.Item1), StringComparer.Ordinal).ThenBy(t => t.Item2).Select(t => new NftRule(
            string.Create(CultureInfo.InvariantCulture, $"ip daddr {address} {HostRules.Proto(t.Item1)} dport {t.Item2} accept"),
            [.. DestinationIs(address), .. HostNatTable.PortMatch(t.Item1, checked((ushort)t.Item2)), new VerdictExpression(Verdict.Accept)])).ToList();
        rules.Add(new NftRule($"ip daddr {address} ct state established,related accept",
            [.. DestinationIs(address), new Ct(CtKey.State), new Bitwise(4, NftData.U32(CtEstablishedRelated), NftData.U32(0)), new Cmp(CmpOp.Neq, NftData.U32(0)), new VerdictExpression(Verdict.Accept)]));
        rules.Add(new NftRule($"ip daddr {address} drop", [.. DestinationIs(address), new VerdictExpression(Verdict.Drop)]));
        return new NftChain("input", rules, new BaseChain("filter", Hook.Input, BaseChain.PriorityFilter));
    }

    private static NftChain[] Dns(DnsPorts dns)
    {
        var resolver = IPAddress.Parse(TaskRules.EmbeddedResolver);
        NftRule To(TransportProtocol proto, int port) => new(
            string.Create(CultureInfo.InvariantCulture, $"ip daddr {resolver} {HostRules.Proto(proto)} dport 53 dnat to {resolver}:{port}"),
            [.. DestinationIs(resolver), .. HostNatTable.PortMatch(proto, 53), new Immediate(NftData.Ipv4(resolver)), new Immediate(NftData.Be16(checked((ushort)port)), Registers.R2), new Nat(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R2)]);
        NftRule From(TransportProtocol proto, int port) => new(
            string.Create(CultureInfo.InvariantCulture, $"ip saddr {resolver} ip daddr {resolver} {HostRules.Proto(proto)} sport {port} snat to :53"),
            [
                new Payload(PayloadBase.Network, 12, 4), new Cmp(CmpOp.Eq, NftData.Ipv4(resolver)),
                .. DestinationIs(resolver),
                new Meta(MetaKey.L4Proto), new Cmp(CmpOp.Eq, NftData.U8(proto == TransportProtocol.Udp ? (byte)17 : (byte)6)),
                new Payload(PayloadBase.Transport, 0, 2), new Cmp(CmpOp.Eq, NftData.Be16(checked((ushort)port))),
                new Immediate(NftData.Be16(53), Registers.R2),
                new Nat(NatType.Snat, Ip, AddressMin: null, ProtoMin: Registers.R2),
            ]);
        return
        [
            new NftChain(DnsOutputChain, [To(TransportProtocol.Tcp, dns.Tcp), To(TransportProtocol.Udp, dns.Udp)], new BaseChain("nat", Hook.Output, BaseChain.PriorityDstNat)),
            new NftChain("dns-postrouting", [From(TransportProtocol.Tcp, dns.Tcp), From(TransportProtocol.Udp, dns.Udp)], new BaseChain("nat", Hook.Postrouting, BaseChain.PrioritySrcNat)),
        ];
    }
}
