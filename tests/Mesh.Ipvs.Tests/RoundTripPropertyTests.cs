using System.Net;
using System.Net.Sockets;
using FsCheck;
using FsCheck.Fluent;
using Mesh.Ipvs.Codec;
using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Tests;

public class RoundTripPropertyTests
{
    private static readonly Config Cfg = Config.QuickThrowOnFailure.WithMaxTest(500);

    internal static Gen<IPAddress> Ipv4 => Gen.Choose(0, 255).ArrayOf(4).Select(b => new IPAddress(b.Select(x => (byte)x).ToArray()));

    internal static Gen<IPAddress> Ipv6 => Gen.Choose(0, 255).ArrayOf(16).Select(b => new IPAddress(b.Select(x => (byte)x).ToArray()));

    private static readonly string[] Schedulers = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "abcdefghijklmno"];

    internal static Gen<IpvsService> Services =>
        from v6 in Gen.Elements(false, true)
        from fwmark in Gen.Frequency((3, Gen.Constant(0u)), (1, Gen.Choose(1, int.MaxValue).Select(i => (uint)i)))
        from addr in v6 ? Ipv6 : Ipv4
        from proto in Gen.Elements(IpvsProtocol.Tcp, IpvsProtocol.Udp, IpvsProtocol.Sctp)
        from port in Gen.Choose(0, 65535)
        from sched in Gen.Elements(Schedulers)
        from flags in Gen.Choose(0, 0x3F).Select(f => (IpvsServiceFlags)(f & ~0x2))
        from timeout in Gen.Choose(0, int.MaxValue)
        from mask in v6 ? Gen.Choose(1, 128).Select(x => (uint)x) : Gen.Choose(0, 32).Select(p => p == 0 ? 0u : 0xFFFFFFFFu << (32 - p))
        from pe in Gen.Elements<string?>(null, "sip")
        select fwmark != 0
            ? new IpvsService
            {
                AddressFamily = v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork,
                FirewallMark = fwmark, Scheduler = sched, Flags = flags, Timeout = (uint)timeout, Netmask = mask, PersistenceEngine = pe,
            }
            : IpvsService.ForAddress(proto, addr, (ushort)port, sched) with { Flags = flags, Timeout = (uint)timeout, Netmask = mask, PersistenceEngine = pe };

    internal static Gen<IpvsDestination> Destinations =>
        from v6 in Gen.Elements(false, true)
        from addr in v6 ? Ipv6 : Ipv4
        from port in Gen.Choose(0, 65535)
        from fwd in Gen.Elements(ForwardingMethod.Masquerade, ForwardingMethod.Local, ForwardingMethod.Tunnel, ForwardingMethod.DirectRoute, ForwardingMethod.Bypass)
        from weight in Gen.Choose(0, int.MaxValue)
        from u in Gen.Choose(0, int.MaxValue)
        from l in Gen.Choose(0, int.MaxValue)
        from tt in Gen.Elements(TunnelType.IpIp, TunnelType.Gue, TunnelType.Gre)
        from tp in Gen.Choose(0, 65535)
        from tf in Gen.Choose(0, 3)
        let d = new IpvsDestination(addr, (ushort)port) { ForwardingMethod = fwd, Weight = weight, UpperThreshold = (uint)u, LowerThreshold = (uint)l }
        select fwd == ForwardingMethod.Tunnel ? d with { TunnelType = tt, TunnelPort = (ushort)tp, TunnelFlags = (TunnelFlags)tf } : d;

    private static NetlinkAttributes TopLevel(NetlinkWriter w)
    {
        var m = Assert.Single(NetlinkDecoder.ParseMessages(w.WrittenMemory));
        Assert.Equal((int)m.Payload.Length + 16, w.Length); // nlmsg_len covers exactly what was written
        var (_, _, attrs) = NetlinkDecoder.ParseGenl(m);
        return NetlinkAttributes.Parse(attrs);
    }

    [Fact]
    public void Service_EncodeDecode_RoundTrips()
    {
        Check.One(Cfg, Prop.ForAll(Services.ToArbitrary(), s =>
        {
            var w = new NetlinkWriter();
            IpvsRequests.Service(w, 0x20, IPVS_CMD_NEW_SERVICE, 1, s);
            var back = ServiceCodec.Decode(TopLevel(w).GetNested(IPVS_CMD_ATTR_SERVICE, "svc"), "t");
            return back == s && back.Key == s.Key && w.Length % 4 == 0;
        }));
    }

    [Fact]
    public void Service_KeyOnlyEncoding_PreservesKey()
    {
        Check.One(Cfg, Prop.ForAll(Services.ToArbitrary(), s =>
        {
            var w = new NetlinkWriter();
            IpvsRequests.Service(w, 0x20, IPVS_CMD_DEL_SERVICE, 1, s);
            var a = TopLevel(w).GetNested(IPVS_CMD_ATTR_SERVICE, "svc");
            return ServiceCodec.Decode(a, "t").Key == s.Key && !a.Has(IPVS_SVC_ATTR_SCHED_NAME);
        }));
    }

    [Fact]
    public void Destination_EncodeDecode_RoundTrips()
    {
        var arb = Services.SelectMany(s => Destinations.Select(d => (s, d))).ToArbitrary();
        Check.One(Cfg, Prop.ForAll(arb, t =>
        {
            var (s, d) = t;
            var w = new NetlinkWriter();
            IpvsRequests.Destination(w, 0x20, IPVS_CMD_NEW_DEST, 1, s, d);
            var top = TopLevel(w);
            var back = DestinationCodec.Decode(top.GetNested(IPVS_CMD_ATTR_DEST, "dest"), s.AddressFamily, "t");
            var svcBack = ServiceCodec.Decode(top.GetNested(IPVS_CMD_ATTR_SERVICE, "svc"), "t");
            return back == d && svcBack.Key == s.Key;
        }));
    }

    [Fact]
    public void Stats_EncodeDecode_RoundTrips()
    {
        var gen = Gen.Choose(0, int.MaxValue).Select(x => (ulong)x * 7919UL).ArrayOf(10)
            .Select(v => new IpvsStats(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]));
        Check.One(Cfg, Prop.ForAll(gen.ToArbitrary(), st =>
        {
            var w = new NetlinkWriter();
            w.BeginMessage(0x20, NetlinkMessageFlags.None, 1);
            w.PutGenlHeader(1, 1);
            StatsCodec.Encode(w, IPVS_SVC_ATTR_STATS64, st);
            w.EndMessage();
            return StatsCodec.Decode(TopLevel(w), IPVS_SVC_ATTR_STATS64, IPVS_SVC_ATTR_STATS) == st;
        }));
    }

    [Fact]
    public void Batch_OfAnySize_SplitsIntoConsistentMessages()
    {
        var gen = Services.SelectMany(s => Destinations.ArrayOf().Select(ds => (s, ds)));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(100), Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var b = new IpvsBatch().NewService(t.s);
            foreach (var d in t.ds) b.NewDestination(t.s, d);
            var w = new NetlinkWriter();
            var offsets = b.Encode(w, 0x20, uint.MaxValue - 2); // sequence numbers wrap inside the batch
            var msgs = NetlinkDecoder.ParseMessages(w.WrittenMemory);
            return msgs.Count == b.Count
                && offsets.Count == b.Count
                && msgs.Select((m, i) => m.Sequence == unchecked(uint.MaxValue - 2 + (uint)i)).All(x => x)
                && msgs.Take(msgs.Count - 1).All(m => (m.Flags & NetlinkMessageFlags.Ack) == 0)
                && (msgs[^1].Flags & NetlinkMessageFlags.Ack) != 0;
        }));
    }

    [Fact]
    public void Validation_RejectsInconsistentServices()
    {
        Assert.Throws<ArgumentException>(() => new IpvsService { Address = IPAddress.Parse("2001:db8::1"), Protocol = IpvsProtocol.Tcp }.Validate());
        Assert.Throws<ArgumentException>(() => new IpvsService { Protocol = IpvsProtocol.Tcp }.Validate());
        Assert.Throws<ArgumentException>(() => IpvsService.Tcp(IPAddress.Loopback, 1, "sixteen-chars-xx").Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => IpvsService.ForFirewallMark(0));
        Assert.Throws<ArgumentException>(() => new IpvsBatch().NewDestination(IpvsService.Tcp(IPAddress.Loopback, 1), new IpvsDestination(IPAddress.Loopback, 1) { Weight = -1 }).Encode(new NetlinkWriter(), 1, 1));
    }
}
