using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Trace;

public sealed partial class NodeTracer
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Trace of {Protocol} {Address}:{Port} failed reading the kernel")]
    private partial void LogReadFailed(Exception exception, string protocol, string address, int port);
}
