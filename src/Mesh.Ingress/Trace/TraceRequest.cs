using System.Globalization;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Trace;

/// <summary>
/// What to trace: a new connection of <see cref="Protocol"/> to <see cref="Address"/>:<see cref="Port"/> arriving at
/// this node, optionally from <see cref="From"/> (an address of the node itself takes the nat OUTPUT path; anything
/// else, or none, is an external client arriving through PREROUTING).
/// </summary>
public sealed record TraceRequest(TransportProtocol Protocol, string Address, int Port, string? From)
{
    /// <summary>Validates the query's raw values; a bad one is a <see cref="ValidationException"/> naming it (400).</summary>
    public static TraceRequest Parse(string? proto, string? addr, string? port, string? from)
    {
        var protocol = proto?.ToLowerInvariant() switch
        {
            "tcp" => TransportProtocol.Tcp,
            "udp" => TransportProtocol.Udp,
            null or "" => throw new ValidationException("proto", "is required: tcp, udp or http"),
            _ => throw new ValidationException("proto", $"'{Validate.Printable(proto)}' is not tcp, udp or http"),
        };
        if (string.IsNullOrEmpty(addr))
        {
            throw new ValidationException("addr", "is required: the IPv4 address the connection is made to");
        }

        var address = Validate.IPv4("addr", addr).ToString();
        if (string.IsNullOrEmpty(port))
        {
            throw new ValidationException("port", "is required: 1-65535");
        }

        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number is < 1 or > 65535)
        {
            throw new ValidationException("port", $"'{Validate.Printable(port)}' is not a port number (1-65535)");
        }

        var source = string.IsNullOrEmpty(from) ? null : Validate.IPv4("from", from).ToString();
        return new TraceRequest(protocol, address, number, source);
    }

    public string Proto => Protocol == TransportProtocol.Udp ? "udp" : "tcp";
}
