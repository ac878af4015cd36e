using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using static Mesh.Ipvs.Netlink.Route.RouteConstants;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// Encodes rtnetlink requests and decodes the kernel's replies: the family headers (ifinfomsg, ifaddrmsg, rtmsg,
/// fib_rule_hdr, ndmsg) and their attributes. Requests are laid out as iproute2 6.1 writes them (see the golden
/// bytes in the tests) except that nested attributes carry NLA_F_NESTED, which the kernel accepts either way.
/// Every reply length is checked; bad input raises <see cref="NetlinkProtocolException"/>.
/// </summary>
public static class RouteCodec
{
    private const NetlinkMessageFlags RequestAck = NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack;
    private const NetlinkMessageFlags Create = (NetlinkMessageFlags)(NLM_F_CREATE | NLM_F_EXCL);
    private const NetlinkMessageFlags Replace = (NetlinkMessageFlags)(NLM_F_CREATE | NLM_F_REPLACE);
    private const NetlinkMessageFlags DumpRequest = NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump;

    // ---- links ----

    /// <summary>RTM_GETLINK of one link by name (ifi_index 0 + IFLA_IFNAME): one RTM_NEWLINK reply or ENODEV.</summary>
    public static void GetLink(NetlinkWriter w, uint seq, string name)
    {
        w.BeginMessage(RTM_GETLINK, RequestAck, seq);
        PutIfInfo(w, AF_UNSPEC, 0, 0, 0);
        w.PutStringZ(IFLA_IFNAME, CheckName(name));
        w.EndMessage();
    }

    public static void DumpLinks(NetlinkWriter w, uint seq)
    {
        w.BeginMessage(RTM_GETLINK, DumpRequest, seq);
        PutIfInfo(w, AF_UNSPEC, 0, 0, 0);
        w.EndMessage();
    }

    /// <summary>
    /// RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL: <c>ip link add NAME [address MAC] [mtu N] type KIND ...</c>.
    /// <paramref name="peerNamespaceFd"/> is an open descriptor of the veth peer's namespace, or -1.
    /// </summary>
    public static void NewLink(NetlinkWriter w, uint seq, Link link, int peerNamespaceFd = -1)
    {
        ArgumentNullException.ThrowIfNull(link);
        var kind = link.Kind ?? throw new ArgumentException($"link {link.Name}: a kind is needed to create it", nameof(link));
        w.BeginMessage(RTM_NEWLINK, RequestAck | Create, seq);
        PutIfInfo(w, AF_UNSPEC, 0, link.Up ? IFF_UP : 0, link.Up ? IFF_UP : 0);
        if (link.Mtu > 0) w.PutU32(IFLA_MTU, (uint)link.Mtu);
        w.PutStringZ(IFLA_IFNAME, CheckName(link.Name));
        if (link.Mac is not null) w.PutAttribute(IFLA_ADDRESS, ParseMac(link.Mac));
        int info = w.BeginNested(IFLA_LINKINFO);
        w.PutAttribute(IFLA_INFO_KIND, System.Text.Encoding.ASCII.GetBytes(kind)); // iproute2 sends the kind unterminated
        switch (kind)
        {
            case LinkKinds.Vxlan:
                var v = link.Vxlan ?? throw new ArgumentException($"link {link.Name}: a VXLAN device needs its settings", nameof(link));
                int data = w.BeginNested(IFLA_INFO_DATA);
                if (v.DeviceIndex != 0) w.PutU32(IFLA_VXLAN_LINK, (uint)v.DeviceIndex);
                w.PutU8(IFLA_VXLAN_PROXY, v.Proxy ? (byte)1 : (byte)0);
                w.PutU32(IFLA_VXLAN_ID, v.Id);
                if (v.Local is { } local)
                {
                    if (local.AddressFamily != AddressFamily.InterNetwork) throw new ArgumentException($"link {link.Name}: VXLAN local {local} is not IPv4", nameof(link));
                    w.PutAttribute(IFLA_VXLAN_LOCAL, local.GetAddressBytes());
                }
                w.PutU8(IFLA_VXLAN_LEARNING, v.Learning ? (byte)1 : (byte)0);
                w.PutBe16(IFLA_VXLAN_PORT, v.Port);
                w.EndNested(data);
                break;
            case LinkKinds.Veth:
                var peer = link.Peer ?? throw new ArgumentException($"link {link.Name}: a veth pair needs its peer", nameof(link));
                int vdata = w.BeginNested(IFLA_INFO_DATA);
                int p = w.BeginNested(VETH_INFO_PEER);
                PutIfInfo(w, AF_UNSPEC, 0, 0, 0);
                if (peer.Mac is not null) w.PutAttribute(IFLA_ADDRESS, ParseMac(peer.Mac));
                if (peer.Mtu > 0) w.PutU32(IFLA_MTU, (uint)peer.Mtu);
                w.PutStringZ(IFLA_IFNAME, CheckName(peer.Name));
                if (peerNamespaceFd >= 0) w.PutU32(IFLA_NET_NS_FD, (uint)peerNamespaceFd);
                w.EndNested(p);
                w.EndNested(vdata);
                break;
        }
        w.EndNested(info);
        w.EndMessage();
    }

    /// <summary>RTM_NEWLINK without NLM_F_CREATE on an existing ifindex: <c>ip link set</c>.</summary>
    public static void SetLink(NetlinkWriter w, uint seq, LinkChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (change.Index <= 0) throw new ArgumentException($"ifindex {change.Index} is not a link", nameof(change));
        w.BeginMessage(RTM_NEWLINK, RequestAck, seq);
        uint flags = change.Up == true ? IFF_UP : 0;
        PutIfInfo(w, AF_UNSPEC, change.Index, flags, change.Up is null ? 0 : IFF_UP);
        if (change.Mtu is { } mtu) w.PutU32(IFLA_MTU, (uint)mtu);
        if (change.MasterIndex is { } master) w.PutU32(IFLA_MASTER, (uint)master);
        if (change.Mac is { } mac) w.PutAttribute(IFLA_ADDRESS, ParseMac(mac));
        w.EndMessage();
    }

    /// <summary>RTM_DELLINK by ifindex: <c>ip link del</c>.</summary>
    public static void DeleteLink(NetlinkWriter w, uint seq, int index)
    {
        if (index <= 0) throw new ArgumentOutOfRangeException(nameof(index), index, "not an ifindex");
        w.BeginMessage(RTM_DELLINK, RequestAck, seq);
        PutIfInfo(w, AF_UNSPEC, index, 0, 0);
        w.EndMessage();
    }

    public static Link ParseLink(NetlinkMessage m, string operation) => ReadLink(Body(m, RTM_NEWLINK, IFINFOMSG_LEN, operation), operation);

    /// <summary>
    /// A notification of the link and namespace-id groups (see <see cref="LinkWatch"/>): RTM_NEWLINK (created or
    /// changed) and RTM_DELLINK of a link, RTM_DELNSID of a namespace id. Null for what is not one of these: RTM_NEWNSID,
    /// and the AF_BRIDGE RTM_NEWLINK/RTM_DELLINK a bridge sends when a port joins, changes or leaves it (not the port
    /// link's own creation or deletion).
    /// </summary>
    public static LinkEvent? ParseLinkEvent(NetlinkMessage m, string operation)
    {
        switch (m.Type)
        {
            case RTM_NEWLINK or RTM_DELLINK:
                var p = m.Payload.Length >= IFINFOMSG_LEN
                    ? m.Payload
                    : throw new NetlinkProtocolException(operation, $"message of type {m.Type} has {m.Payload.Length} payload bytes, its header needs {IFINFOMSG_LEN}");
                if (p.Span[0] != AF_UNSPEC)
                {
                    return null;
                }

                var link = ReadLink(p, operation);
                return m.Type == RTM_NEWLINK ? new LinkChanged(link) : new LinkDeleted(link.Index, link.Name);
            case RTM_DELNSID:
                var body = Body(m, RTM_DELNSID, RTGENMSG_LEN, operation);
                return new NetnsIdDeleted((int)NetlinkAttributes.Parse(body[RTGENMSG_LEN..], operation).GetU32(NETNSA_NSID, "NETNSA_NSID"));
            default:
                return null;
        }
    }

    private static Link ReadLink(ReadOnlyMemory<byte> p, string operation)
    {
        int index = BinaryPrimitives.ReadInt32LittleEndian(p.Span[4..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(p.Span[8..]);
        var a = NetlinkAttributes.Parse(p[IFINFOMSG_LEN..], operation);
        string? kind = null;
        VxlanSettings? vxlan = null;
        if (a.GetNestedOrNull(IFLA_LINKINFO) is { } info)
        {
            kind = info.GetStringOrNull(IFLA_INFO_KIND);
            if (kind == LinkKinds.Vxlan && info.GetNestedOrNull(IFLA_INFO_DATA) is { } d)
            {
                vxlan = new VxlanSettings(
                    d.GetU32OrDefault(IFLA_VXLAN_ID, "IFLA_VXLAN_ID"),
                    d.Has(IFLA_VXLAN_PORT) ? d.GetBe16(IFLA_VXLAN_PORT, "IFLA_VXLAN_PORT") : (ushort)0,
                    d.Has(IFLA_VXLAN_LOCAL) ? new IPAddress(d.Fixed(IFLA_VXLAN_LOCAL, "IFLA_VXLAN_LOCAL", 4).Span) : null,
                    (int)d.GetU32OrDefault(IFLA_VXLAN_LINK, "IFLA_VXLAN_LINK"),
                    d.Has(IFLA_VXLAN_LEARNING) && d.GetU8(IFLA_VXLAN_LEARNING, "IFLA_VXLAN_LEARNING") != 0,
                    d.Has(IFLA_VXLAN_PROXY) && d.GetU8(IFLA_VXLAN_PROXY, "IFLA_VXLAN_PROXY") != 0);
            }
        }
        return new Link
        {
            Index = index,
            Name = a.GetString(IFLA_IFNAME, "IFLA_IFNAME"),
            Kind = kind,
            Up = (flags & IFF_UP) != 0,
            Mtu = (int)a.GetU32OrDefault(IFLA_MTU, "IFLA_MTU"),
            MasterIndex = (int)a.GetU32OrDefault(IFLA_MASTER, "IFLA_MASTER"),
            Mac = a.TryGet(IFLA_ADDRESS, out var mac) && mac.Length == 6 ? FormatMac(mac.Span) : null,
            Vxlan = vxlan,
            PeerIndex = (int)a.GetU32OrDefault(IFLA_LINK, "IFLA_LINK"),
            PeerNetnsId = a.Has(IFLA_LINK_NETNSID) ? (int)a.GetU32(IFLA_LINK_NETNSID, "IFLA_LINK_NETNSID") : null,
        };
    }

    // ---- namespace ids ----

    /// <summary>struct rtgenmsg with family AF_UNSPEC, padded.</summary>
    private static readonly byte[] RtGenMsgUnspec = new byte[RTGENMSG_LEN];

    /// <summary>
    /// RTM_GETNSID (<c>ip netns list-id</c> for one namespace): the id the asking namespace knows the namespace open as
    /// <paramref name="namespaceFd"/> by, the one its links' IFLA_LINK_NETNSID say. One RTM_NEWNSID reply.
    /// </summary>
    public static void GetNetnsId(NetlinkWriter w, uint seq, int namespaceFd)
    {
        w.BeginMessage(RTM_GETNSID, RequestAck, seq);
        w.PutHeader(RtGenMsgUnspec);
        w.PutU32(NETNSA_FD, checked((uint)namespaceFd));
        w.EndMessage();
    }

    /// <summary>RTM_NEWNSID with NETNSA_NSID -1 (<c>ip netns set NAME auto</c>): the kernel gives the namespace the lowest free id; EEXIST when it has one.</summary>
    public static void AssignNetnsId(NetlinkWriter w, uint seq, int namespaceFd)
    {
        w.BeginMessage(RTM_NEWNSID, RequestAck, seq);
        w.PutHeader(RtGenMsgUnspec);
        w.PutU32(NETNSA_FD, checked((uint)namespaceFd));
        w.PutU32(NETNSA_NSID, unchecked((uint)NETNSA_NSID_NOT_ASSIGNED));
        w.EndMessage();
    }

    /// <summary>The id in an RTM_NEWNSID reply; null when the namespace has none (NETNSA_NSID_NOT_ASSIGNED).</summary>
    public static int? ParseNetnsId(NetlinkMessage m, string operation)
    {
        var p = Body(m, RTM_NEWNSID, RTGENMSG_LEN, operation);
        int id = (int)NetlinkAttributes.Parse(p[RTGENMSG_LEN..], operation).GetU32(NETNSA_NSID, "NETNSA_NSID");
        return id < 0 ? null : id;
    }

    // ---- addresses ----

    /// <summary>RTM_NEWADDR with NLM_F_CREATE|NLM_F_REPLACE: <c>ip addr replace IP/PREFIX dev LINK</c>.</summary>
    public static void ReplaceAddress(NetlinkWriter w, uint seq, Address address)
    {
        ArgumentNullException.ThrowIfNull(address);
        byte family = Family(address.Ip);
        int bits = family == AF_INET ? 32 : 128;
        if (address.PrefixLength < 0 || address.PrefixLength > bits) throw new ArgumentException($"address {address.Ip}/{address.PrefixLength}: prefix length out of 0..{bits}", nameof(address));
        if (address.LinkIndex <= 0) throw new ArgumentException($"address {address.Ip}/{address.PrefixLength}: no link", nameof(address));
        w.BeginMessage(RTM_NEWADDR, RequestAck | Replace, seq);
        Span<byte> h = stackalloc byte[IFADDRMSG_LEN];
        h.Clear();
        h[0] = family;
        h[1] = (byte)address.PrefixLength;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], address.LinkIndex);
        w.PutHeader(h);
        var bytes = address.Ip.GetAddressBytes();
        w.PutAttribute(IFA_LOCAL, bytes);
        w.PutAttribute(IFA_ADDRESS, bytes);
        w.EndMessage();
    }

    public static void DumpAddresses(NetlinkWriter w, uint seq, byte family)
    {
        w.BeginMessage(RTM_GETADDR, DumpRequest, seq);
        Span<byte> h = stackalloc byte[IFADDRMSG_LEN];
        h.Clear();
        h[0] = family;
        w.PutHeader(h);
        w.EndMessage();
    }

    public static Address ParseAddress(NetlinkMessage m, string operation)
    {
        var p = Body(m, RTM_NEWADDR, IFADDRMSG_LEN, operation);
        byte family = p.Span[0];
        byte prefix = p.Span[1];
        int index = BinaryPrimitives.ReadInt32LittleEndian(p.Span[4..]);
        var a = NetlinkAttributes.Parse(p[IFADDRMSG_LEN..], operation);
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS differs from it only on point-to-point links.
        var ip = ReadIp(a, a.Has(IFA_LOCAL) ? IFA_LOCAL : IFA_ADDRESS, family, "IFA_LOCAL", operation);
        return new Address(index, ip, prefix);
    }

    // ---- routes ----

    /// <summary>RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE: <c>ip route replace DST|default [via GW] [dev LINK] [table T]</c>.</summary>
    public static void ReplaceRoute(NetlinkWriter w, uint seq, Route route)
    {
        ArgumentNullException.ThrowIfNull(route);
        w.BeginMessage(RTM_NEWROUTE, RequestAck | Replace, seq);
        PutRtMsg(w, route, RT_SCOPE_UNIVERSE, forDelete: false);
        w.EndMessage();
    }

    /// <summary>RTM_DELROUTE: <c>ip route del DST [table T]</c>.</summary>
    public static void DeleteRoute(NetlinkWriter w, uint seq, Route route)
    {
        ArgumentNullException.ThrowIfNull(route);
        w.BeginMessage(RTM_DELROUTE, RequestAck, seq);
        PutRtMsg(w, route, RT_SCOPE_UNIVERSE, forDelete: true);
        w.EndMessage();
    }

    public static void DumpRoutes(NetlinkWriter w, uint seq, byte family)
    {
        w.BeginMessage(RTM_GETROUTE, DumpRequest, seq);
        Span<byte> h = stackalloc byte[RTMSG_LEN];
        h.Clear();
        h[0] = family;
        w.PutHeader(h);
        w.EndMessage();
    }

    /// <summary>A route of a dump; null for what is not a unicast route (local, broadcast, cached...).</summary>
    public static Route? ParseRoute(NetlinkMessage m, string operation)
    {
        var p = Body(m, RTM_NEWROUTE, RTMSG_LEN, operation);
        var h = p.Span;
        byte family = h[0], dstLen = h[1], type = h[7];
        if (type != RTN_UNICAST) return null;
        var a = NetlinkAttributes.Parse(p[RTMSG_LEN..], operation);
        IPNetwork? dst = null;
        if (a.Has(RTA_DST))
        {
            var ip = ReadIp(a, RTA_DST, family, "RTA_DST", operation);
            if (dstLen > (family == AF_INET ? 32 : 128)) throw new NetlinkProtocolException(operation, $"route prefix length {dstLen}");
            dst = new IPNetwork(ip, dstLen);
        }
        return new Route
        {
            Family = family,
            Destination = dst,
            Gateway = a.Has(RTA_GATEWAY) ? ReadIp(a, RTA_GATEWAY, family, "RTA_GATEWAY", operation) : null,
            OutputIndex = (int)a.GetU32OrDefault(RTA_OIF, "RTA_OIF"),
            Table = a.GetU32OrDefault(RTA_TABLE, "RTA_TABLE", h[4]),
        };
    }

    // ---- rules ----

    /// <summary>RTM_NEWRULE with NLM_F_CREATE|NLM_F_EXCL: <c>ip rule add from SRC lookup TABLE priority P</c>.</summary>
    public static void AddRule(NetlinkWriter w, uint seq, Rule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        w.BeginMessage(RTM_NEWRULE, RequestAck | Create, seq);
        PutRuleHeader(w, rule.Family, rule.Source, FR_ACT_TO_TBL, rule.Table);
        if (rule.Source is { } s) w.PutAttribute(FRA_SRC, s.BaseAddress.GetAddressBytes());
        w.PutU32(FRA_TABLE, rule.Table);
        w.PutU32(FRA_PRIORITY, rule.Priority);
        w.EndMessage();
    }

    /// <summary>RTM_DELRULE by priority alone: <c>ip rule del priority P</c> (removes one rule of that priority).</summary>
    public static void DeleteRule(NetlinkWriter w, uint seq, byte family, uint priority)
    {
        w.BeginMessage(RTM_DELRULE, RequestAck, seq);
        PutRuleHeader(w, family, null, 0, 0);
        w.PutU32(FRA_PRIORITY, priority);
        w.EndMessage();
    }

    public static void DumpRules(NetlinkWriter w, uint seq, byte family)
    {
        w.BeginMessage(RTM_GETRULE, DumpRequest, seq);
        PutRuleHeader(w, family, null, 0, 0);
        w.EndMessage();
    }

    public static Rule ParseRule(NetlinkMessage m, string operation)
    {
        var p = Body(m, RTM_NEWRULE, FIB_RULE_HDR_LEN, operation);
        var h = p.Span;
        byte family = h[0], srcLen = h[2], table = h[4];
        var a = NetlinkAttributes.Parse(p[FIB_RULE_HDR_LEN..], operation);
        IPNetwork? src = a.Has(FRA_SRC) ? new IPNetwork(ReadIp(a, FRA_SRC, family, "FRA_SRC", operation), srcLen) : null;
        return new Rule(a.GetU32OrDefault(FRA_PRIORITY, "FRA_PRIORITY"), src, a.GetU32OrDefault(FRA_TABLE, "FRA_TABLE", table)) { Family = family };
    }

    // ---- neighbours and FDB ----

    /// <summary>RTM_NEWNEIGH with NLM_F_CREATE|NLM_F_REPLACE: <c>ip neigh replace</c> / <c>bridge fdb replace</c>.</summary>
    public static void ReplaceNeighbour(NetlinkWriter w, uint seq, Neighbour neighbour)
    {
        ArgumentNullException.ThrowIfNull(neighbour);
        if (neighbour.Family != NeighbourFamily.Bridge && neighbour.Destination is null) throw new ArgumentException($"{neighbour}: an ARP entry needs an IP", nameof(neighbour));
        if (neighbour.Family == NeighbourFamily.Bridge && neighbour.Mac is null) throw new ArgumentException($"{neighbour}: an FDB entry needs a MAC", nameof(neighbour));
        w.BeginMessage(RTM_NEWNEIGH, RequestAck | Replace, seq);
        PutNeighbour(w, neighbour);
        w.EndMessage();
    }

    /// <summary>RTM_DELNEIGH: <c>ip neigh del IP dev LINK</c> / <c>bridge fdb del MAC dev LINK [dst VTEP] self</c>.</summary>
    public static void DeleteNeighbour(NetlinkWriter w, uint seq, Neighbour neighbour)
    {
        ArgumentNullException.ThrowIfNull(neighbour);
        w.BeginMessage(RTM_DELNEIGH, RequestAck, seq);
        PutNeighbour(w, neighbour);
        w.EndMessage();
    }

    public static void DumpNeighbours(NetlinkWriter w, uint seq, NeighbourFamily family)
    {
        w.BeginMessage(RTM_GETNEIGH, DumpRequest, seq);
        Span<byte> h = stackalloc byte[NDMSG_LEN];
        h.Clear();
        h[0] = (byte)family;
        w.PutHeader(h);
        w.EndMessage();
    }

    /// <summary>
    /// An RTM_NEWNEIGH of a dump as a value (<see cref="NeighbourEntry"/>), read in place: the header's length and each
    /// attribute's bounds checked, an NDA_DST of neither 4 nor 16 bytes refused; nothing allocated.
    /// </summary>
    public static NeighbourEntry ReadNeighbourEntry(NetlinkMessage m, string operation)
    {
        var p = Body(m, RTM_NEWNEIGH, NDMSG_LEN, operation).Span;
        var attributes = p[NDMSG_LEN..];
        IpValue? dst = null;
        if (NetlinkAttributes.TryFind(attributes, NDA_DST, out var d, operation))
        {
            dst = IpValue.TryRead(d, out var ip) ? ip : throw new NetlinkProtocolException(operation, $"NDA_DST of {d.Length} bytes");
        }

        ulong? mac = NetlinkAttributes.TryFind(attributes, NDA_LLADDR, out var l, operation) && l.Length == 6 ? MacText.Read(l) : null;
        return new NeighbourEntry(
            (NeighbourFamily)p[0],
            BinaryPrimitives.ReadInt32LittleEndian(p[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(p[8..]),
            p[10],
            dst,
            mac);
    }

    // ---- shared ----
    // ---- shared ----

    /// <summary>"aa:bb:cc:dd:ee:ff" (either case) → 6 bytes; anything else is refused, naming the value.</summary>
    public static byte[] ParseMac(string mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var parts = mac.Split(':');
        var bytes = new byte[6];
        if (parts.Length != 6) throw new ArgumentException($"'{mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)", nameof(mac));
        for (int i = 0; i < 6; i++)
        {
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out bytes[i]))
            {
                throw new ArgumentException($"'{mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)", nameof(mac));
            }
        }
        return bytes;
    }

    public static string FormatMac(ReadOnlySpan<byte> mac) => MacText.Format(mac);

    private static void PutIfInfo(NetlinkWriter w, byte family, int index, uint flags, uint change)
    {
        Span<byte> h = stackalloc byte[IFINFOMSG_LEN];
        h.Clear();
        h[0] = family;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], change);
        w.PutHeader(h);
    }

    private static void PutRtMsg(NetlinkWriter w, Route route, byte scope, bool forDelete)
    {
        byte family = route.Family;
        if (route.Destination is { } dst && Family(dst.BaseAddress) != family) throw new ArgumentException($"route {route}: destination not of the route's family", nameof(route));
        if (route.Gateway is { } gw && Family(gw) != family) throw new ArgumentException($"route {route}: gateway not of the route's family", nameof(route));
        Span<byte> h = stackalloc byte[RTMSG_LEN];
        h.Clear();
        h[0] = family;
        h[1] = (byte)(route.Destination?.PrefixLength ?? 0);
        h[4] = route.Table < 256 ? (byte)route.Table : RT_TABLE_UNSPEC;
        if (!forDelete)
        {
            h[5] = RTPROT_BOOT;
            // As ip route: a route without a gateway reaches its destination on the link itself.
            h[6] = route.Gateway is null ? RT_SCOPE_LINK : scope;
            h[7] = RTN_UNICAST;
        }
        w.PutHeader(h);
        if (route.Destination is { } d) w.PutAttribute(RTA_DST, d.BaseAddress.GetAddressBytes());
        if (route.Table >= 256) w.PutU32(RTA_TABLE, route.Table);
        if (route.Gateway is { } g) w.PutAttribute(RTA_GATEWAY, g.GetAddressBytes());
        if (route.OutputIndex != 0) w.PutU32(RTA_OIF, (uint)route.OutputIndex);
    }

    private static void PutRuleHeader(NetlinkWriter w, byte family, IPNetwork? source, byte action, uint table)
    {
        Span<byte> h = stackalloc byte[FIB_RULE_HDR_LEN];
        h.Clear();
        h[0] = family;
        h[2] = (byte)(source?.PrefixLength ?? 0);
        h[4] = table is > 0 and < 256 ? (byte)table : RT_TABLE_UNSPEC;
        h[7] = action;
        w.PutHeader(h);
    }

    private static void PutNeighbour(NetlinkWriter w, Neighbour n)
    {
        if (n.LinkIndex <= 0) throw new ArgumentException($"{n}: no link", nameof(n));
        Span<byte> h = stackalloc byte[NDMSG_LEN];
        h.Clear();
        h[0] = (byte)n.Family;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], n.LinkIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], n.State);
        h[10] = n.Flags;
        w.PutHeader(h);
        // The order iproute2 uses: ip neigh puts NDA_DST first, bridge fdb NDA_LLADDR first.
        if (n.Family == NeighbourFamily.Bridge)
        {
            if (n.Mac is not null) w.PutAttribute(NDA_LLADDR, ParseMac(n.Mac));
            if (n.Destination is { } vtep) w.PutAttribute(NDA_DST, vtep.GetAddressBytes());
        }
        else
        {
            if (n.Destination is { } ip) w.PutAttribute(NDA_DST, ip.GetAddressBytes());
            if (n.Mac is not null) w.PutAttribute(NDA_LLADDR, ParseMac(n.Mac));
        }
    }

    private static ReadOnlyMemory<byte> Body(NetlinkMessage m, ushort type, int headerLength, string operation)
    {
        if (m.Type != type) throw new NetlinkProtocolException(operation, $"reply of type {m.Type}, expected {type}");
        if (m.Payload.Length < headerLength) throw new NetlinkProtocolException(operation, $"reply of type {type} has {m.Payload.Length} payload bytes, its header needs {headerLength}");
        return m.Payload;
    }

    private static IPAddress ReadIp(NetlinkAttributes a, ushort type, byte family, string what, string operation)
    {
        int size = family switch
        {
            AF_INET => 4,
            AF_INET6 => 16,
            _ => throw new NetlinkProtocolException(operation, $"{what} of address family {family}"),
        };
        return new IPAddress(a.Fixed(type, what, size).Span);
    }

    private static byte Family(IPAddress ip) => ip.AddressFamily switch
    {
        AddressFamily.InterNetwork => AF_INET,
        AddressFamily.InterNetworkV6 => AF_INET6,
        _ => throw new ArgumentException($"{ip} is neither IPv4 nor IPv6", nameof(ip)),
    };

    /// <summary>IFNAMSIZ is 16 with the NUL: a longer name (or an empty one, or one with '/' or whitespace) is refused here, naming it.</summary>
    private static string CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is 0 or > 15 || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c > '~' || c < '!'))
        {
            throw new ArgumentException($"'{name}' is not a valid interface name (1-15 printable characters, no '/', ':' or space)", nameof(name));
        }
        return name;
    }
}
