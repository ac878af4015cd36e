using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

public sealed partial class HealthProber
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Probing {Task} of {Service} at {Address}:{Port} ({Check})")]
    private partial void LogProbing(string task, string service, string address, int port, string check);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Probe of {Task} not run")]
    private partial void LogProbeNotRun(Exception exception, string task);
}
