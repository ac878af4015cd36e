using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Proxy;

public sealed partial class UdpRelay
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "PROXY v2 relay on udp port {Port}: receive failed ({Error}); still listening")]
    private partial void LogReceiveFailed(int port, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "PROXY v2 relay on udp port {Port}: no flow to backend {Backend} ({Reason}); the datagram was dropped")]
    private partial void LogFlowFailed(int port, string backend, string reason);
}
