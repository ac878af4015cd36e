using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.HealthChecks;

public abstract partial class TaskLoops<TTarget>
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "The {Purpose} could not read the state; retrying in {RetrySeconds} s")]
    private partial void LogStateFailed(Exception exception, string purpose, double retrySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Store unavailable to the {Purpose}: {Reason}; going on with the last known tasks")]
    private partial void LogStoreUnavailable(string purpose, string reason);
}
