using System.Net;
using System.Net.Sockets;

namespace Mesh.Ipvs;

/// <summary>What identifies a virtual service: (family, protocol, address, port) or (family, firewall mark).</summary>
public readonly record struct IpvsServiceKey(AddressFamily AddressFamily, IpvsProtocol Protocol, IPAddress? Address, ushort Port, uint FirewallMark)
{
    public bool IsFirewallMark => FirewallMark != 0;

    public override string ToString() => IsFirewallMark
        ? $"FWM {FirewallMark} {(AddressFamily == AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4")}"
        : $"{Protocol.ToString().ToUpperInvariant()} {(Address is null ? "?" : new IPEndPoint(Address, Port).ToString())}";
}

/// <summary>
/// An IPVS virtual service, keyed by address/port/protocol or by firewall mark (<see cref="FirewallMark"/> != 0).
/// Build with <see cref="Tcp"/>, <see cref="Udp"/>, <see cref="Sctp"/> or <see cref="ForFirewallMark"/> and
/// adjust with <c>with { Scheduler = "wrr" }</c>. <see cref="Stats"/> is only filled by dumps.
/// </summary>
public sealed record IpvsService
{
    /// <summary>AF_INET or AF_INET6. Must match <see cref="Address"/> for address services.</summary>
    public AddressFamily AddressFamily { get; init; } = AddressFamily.InterNetwork;

    /// <summary>Protocol of an address service; <see cref="IpvsProtocol.None"/> for firewall-mark services.</summary>
    public IpvsProtocol Protocol { get; init; }

    /// <summary>Virtual IP of an address service; null for firewall-mark services.</summary>
    public IPAddress? Address { get; init; }

    public ushort Port { get; init; }

    /// <summary>Firewall mark (non-zero makes this a fwmark service; protocol/address/port are then unused).</summary>
    public uint FirewallMark { get; init; }

    /// <summary>Scheduler name ("rr", "wrr", "lc", "wlc", "sh", "mh", ...; see <see cref="IpvsSchedulers"/>).</summary>
    public string Scheduler { get; init; } = IpvsSchedulers.RoundRobin;

    /// <summary>Service flags (persistent, one-packet, scheduler flags such as sh/mh fallback and port).</summary>
    public IpvsServiceFlags Flags { get; init; }

    /// <summary>Persistence timeout in seconds (used with <see cref="IpvsServiceFlags.Persistent"/>).</summary>
    public uint Timeout { get; init; }

    /// <summary>
    /// Persistence netmask: for IPv4 the mask as a number (0xFFFFFF00 = /24), for IPv6 the prefix length (1..128).
    /// Null means the default (0xFFFFFFFF, or 128 for IPv6), which is what the kernel reports back.
    /// </summary>
    public uint? Netmask { get; init; }

    /// <summary>Persistence engine name (e.g. "sip"); null for none.</summary>
    public string? PersistenceEngine { get; init; }

    /// <summary>Counters, filled by dumps only (ignored when sending).</summary>
    public IpvsStats? Stats { get; init; }

    public bool IsFirewallMark => FirewallMark != 0;

    public IpvsServiceKey Key => IsFirewallMark
        ? new IpvsServiceKey(AddressFamily, IpvsProtocol.None, null, 0, FirewallMark)
        : new IpvsServiceKey(AddressFamily, Protocol, Address, Port, 0);

    /// <summary>The effective netmask sent to the kernel.</summary>
    public uint EffectiveNetmask => Netmask ?? (AddressFamily == AddressFamily.InterNetworkV6 ? 128u : 0xFFFFFFFFu);

    public static IpvsService Tcp(IPAddress address, ushort port, string scheduler = IpvsSchedulers.RoundRobin) => ForAddress(IpvsProtocol.Tcp, address, port, scheduler);

    public static IpvsService Udp(IPAddress address, ushort port, string scheduler = IpvsSchedulers.RoundRobin) => ForAddress(IpvsProtocol.Udp, address, port, scheduler);

    public static IpvsService Sctp(IPAddress address, ushort port, string scheduler = IpvsSchedulers.RoundRobin) => ForAddress(IpvsProtocol.Sctp, address, port, scheduler);

    public static IpvsService ForAddress(IpvsProtocol protocol, IPAddress address, ushort port, string scheduler = IpvsSchedulers.RoundRobin)
    {
        ArgumentNullException.ThrowIfNull(address);
        return new IpvsService { AddressFamily = address.AddressFamily, Protocol = protocol, Address = address, Port = port, Scheduler = scheduler };
    }

    public static IpvsService ForFirewallMark(uint mark, AddressFamily family = AddressFamily.InterNetwork, string scheduler = IpvsSchedulers.RoundRobin)
    {
        if (mark == 0) throw new ArgumentOutOfRangeException(nameof(mark), "firewall mark must be non-zero");
        return new IpvsService { AddressFamily = family, FirewallMark = mark, Scheduler = scheduler };
    }

    /// <summary>True when both describe the same configuration (stats ignored, default netmask normalised).</summary>
    public bool ConfigurationEquals(IpvsService? other) =>
        other is not null && Normalize(this) == Normalize(other);

    private static IpvsService Normalize(IpvsService s) => s with { Stats = null, Netmask = s.EffectiveNetmask };

    public override string ToString() => $"{Key} {Scheduler}{(Flags != 0 ? " flags=" + Flags : "")}";

    /// <summary>Checks the service can be encoded; throws <see cref="ArgumentException"/> otherwise.</summary>
    public void Validate()
    {
        if (AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            throw new ArgumentException($"service address family must be IPv4 or IPv6, not {AddressFamily}");
        if (!IsFirewallMark)
        {
            if (Address is null) throw new ArgumentException("an address service needs an Address (or set FirewallMark)");
            if (Address.AddressFamily != AddressFamily) throw new ArgumentException($"service address {Address} does not match AddressFamily {AddressFamily}");
            if (Protocol == IpvsProtocol.None) throw new ArgumentException("an address service needs a Protocol");
        }
        if (string.IsNullOrEmpty(Scheduler) || System.Text.Encoding.UTF8.GetByteCount(Scheduler) >= IpvsConstants.IP_VS_SCHEDNAME_MAXLEN)
            throw new ArgumentException($"scheduler name must be 1..{IpvsConstants.IP_VS_SCHEDNAME_MAXLEN - 1} bytes");
        if (PersistenceEngine is not null && System.Text.Encoding.UTF8.GetByteCount(PersistenceEngine) >= IpvsConstants.IP_VS_PENAME_MAXLEN)
            throw new ArgumentException($"persistence engine name must be < {IpvsConstants.IP_VS_PENAME_MAXLEN} bytes");
    }
}
