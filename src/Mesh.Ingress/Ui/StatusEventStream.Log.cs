using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Ui;

public sealed partial class StatusEventStream
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Status page stream refused (503): all {Max} live viewer slots are taken; request from {Remote}")]
    private static partial void LogFull(ILogger logger, int max, string remote);
}
