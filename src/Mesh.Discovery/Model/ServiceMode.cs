namespace Mesh.Discovery.Model;

/// <summary>How a service is reached east-west: through a virtual IP, or by DNS round robin over task IPs.</summary>
public enum ServiceMode
{
    Vip,
    Dnsrr,
}
