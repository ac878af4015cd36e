using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Proxy;

public sealed partial class TcpRelay
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "PROXY v2 relay on tcp port {Port}: accept failed ({Error}); still listening")]
    private partial void LogAcceptFailed(int port, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "PROXY v2 relay on tcp port {Port}: backend {Backend} not reached ({Reason}); the client was reset")]
    private partial void LogConnectFailed(int port, string backend, string reason);
}
