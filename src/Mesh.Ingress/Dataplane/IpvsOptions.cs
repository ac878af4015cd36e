using Mesh.Ipvs;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Settings of the ipvs dataplane (<c>mesh daemon --ipvs-*</c>). IPVS keeps its own connection table with its own
/// idle timeouts (per network namespace; kernel defaults tcp 900 s, tcpfin 120 s, udp 300 s): an idle TCP connection
/// through the mesh is forgotten after 900 s unless <see cref="TcpTimeout"/> says otherwise, as Docker users find out.
/// </summary>
public sealed record IpvsOptions
{
    /// <summary>Idle timeout of established TCP connections; null leaves the kernel's (900 s).</summary>
    public TimeSpan? TcpTimeout { get; init; }

    /// <summary>Timeout of TCP connections after FIN; null leaves the kernel's (120 s).</summary>
    public TimeSpan? TcpFinTimeout { get; init; }

    /// <summary>Timeout of UDP "connections"; null leaves the kernel's (300 s).</summary>
    public TimeSpan? UdpTimeout { get; init; }

    /// <summary>
    /// How long a real server whose task went away stays at weight 0 (no new connections, existing ones finish)
    /// before it is removed, on the first sync after that. Zero removes it at once.
    /// </summary>
    public TimeSpan DrainPeriod { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>IPVS scheduler of every service (Docker uses rr).</summary>
    public string Scheduler { get; init; } = IpvsSchedulers.RoundRobin;

    /// <summary>The timeouts to set, or null when none is configured (0 in a field leaves that one unchanged).</summary>
    public IpvsTimeouts? Timeouts => TcpTimeout is null && TcpFinTimeout is null && UdpTimeout is null
        ? null
        : new IpvsTimeouts(Seconds(TcpTimeout), Seconds(TcpFinTimeout), Seconds(UdpTimeout));

    private static uint Seconds(TimeSpan? t) => t is { } v ? (uint)Math.Clamp(Math.Ceiling(v.TotalSeconds), 1, int.MaxValue) : 0;
}
