using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

public sealed partial class TaskHealthMonitor
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} of {Service} is {Status} on this node (was {Previous}) {Error}")]
    private partial void LogStatusChanged(string task, string service, string previous, string status, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Every task of {Service} is unhealthy on this node: failing open, routing to all of them")]
    private partial void LogFailOpen(string service);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Service} has a healthy task again on this node: no longer failing open")]
    private partial void LogFailOpenEnded(string service);
}
