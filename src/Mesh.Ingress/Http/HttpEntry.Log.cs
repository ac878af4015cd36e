using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Http;

public sealed partial class HttpEntry
{
    [LoggerMessage(Level = LogLevel.Information, Message = "HTTP entry listening on port {Port} (HTTPS: {HttpsPort}; 0 is off), reaching tasks from {Sandbox}")]
    private partial void LogListening(int port, int httpsPort, string sandbox);

    [LoggerMessage(Level = LogLevel.Information, Message = "HTTP entry applied revision {Revision}: {Routes} routes, {Destinations} destinations")]
    private partial void LogApplied(long revision, int routes, int destinations);

    [LoggerMessage(Level = LogLevel.Error, Message = "HTTP entry on port {Port} failed; retrying in {RetrySeconds} s (the API and L4 traffic are not affected)")]
    private partial void LogEntryFailed(Exception exception, int port, double retrySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "HTTP entry could not read the state; keeping its routes, retrying in {RetrySeconds} s")]
    private partial void LogStateFailed(Exception exception, double retrySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "HTTP entry: store unavailable ({Reason}); serving the last known routes")]
    private partial void LogStoreUnavailable(string reason);
}
