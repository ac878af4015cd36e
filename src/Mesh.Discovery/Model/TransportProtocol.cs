namespace Mesh.Discovery.Model;

public enum TransportProtocol
{
    Tcp,
    Udp,
}
