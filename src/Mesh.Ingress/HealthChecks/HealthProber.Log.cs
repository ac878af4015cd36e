using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

public sealed partial class HealthProber
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Probing {Task} of {Service} at {Address}:{Port} ({Check})")]
    private partial void LogProbing(string task, string service, string address, int port, string check);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Probe of {Task} not run")]
    private partial void LogProbeNotRun(Exception exception, string task);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Health checks could not read the state; retrying in {RetrySeconds} s")]
    private partial void LogStateFailed(Exception exception, double retrySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Store unavailable to the health checks: {Reason}; probing the last known tasks")]
    private partial void LogStoreUnavailable(string reason);
}
