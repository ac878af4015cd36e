namespace Mesh.Ipvs;

/// <summary>
/// Connection timeouts in seconds (IPVS_CMD_ATTR_TIMEOUT_TCP / _TCP_FIN / _UDP; ipvsadm --set tcp tcpfin udp).
/// When setting, 0 leaves that timeout unchanged (kernel semantics).
/// </summary>
public sealed record IpvsTimeouts(uint TcpSeconds, uint TcpFinSeconds, uint UdpSeconds);
