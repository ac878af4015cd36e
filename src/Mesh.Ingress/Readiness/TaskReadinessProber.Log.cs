using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Readiness;

public sealed partial class TaskReadinessProber
{
    [LoggerMessage(Level = LogLevel.Information, Message = "{Task} of {Service} is starting: routed once {Address}:{Port} accepts a connection (failed after {TimeoutSeconds} s)")]
    private partial void LogWaiting(string task, string service, string address, int port, double timeoutSeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Task} of {Service} is running: port {Port} answered after {ElapsedMs:0} ms")]
    private partial void LogRunning(string task, string service, int? port, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Task} of {Service} failed: {Address}:{Port} accepted no connection in {ElapsedSeconds:0} s (last: {Error}); it is not routed until its runtime removes it")]
    private partial void LogFailed(string task, string service, string? address, int? port, double elapsedSeconds, string? error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Readiness probe of {Task} not run")]
    private partial void LogProbeNotRun(Exception exception, string task);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not make {Task} {State} in the store; retrying in {RetrySeconds} s")]
    private partial void LogReportFailed(Exception exception, string task, string state, double retrySeconds);
}
