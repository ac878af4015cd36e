using System.Text.Json.Serialization;

namespace Mesh.Discovery.Model;

[JsonConverter(typeof(JsonStringEnumConverter<TransportProtocol>))]
public enum TransportProtocol
{
    Tcp,
    Udp,
}
