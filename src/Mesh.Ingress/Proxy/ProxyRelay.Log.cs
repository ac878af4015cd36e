using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Proxy;

public sealed partial class ProxyRelay
{
    [LoggerMessage(Level = LogLevel.Information, Message = "PROXY v2 relay listening on {Port} in {Sandbox}: {Backends} backends (revision {Revision})")]
    private partial void LogOpened(string port, string sandbox, int backends, long revision);

    [LoggerMessage(Level = LogLevel.Information, Message = "PROXY v2 relay on {Port}: {Backends} backends for new connections, open ones finish where they are (revision {Revision})")]
    private partial void LogUpdated(string port, int backends, long revision);

    [LoggerMessage(Level = LogLevel.Information, Message = "PROXY v2 relay closed {Protocol} port {Port}; its open connections finish (revision {Revision})")]
    private partial void LogClosed(int port, string protocol, long revision);

    [LoggerMessage(Level = LogLevel.Warning, Message = "PROXY v2 relay could not listen on {Port} in {Sandbox} ({Reason}); retrying in {RetrySeconds} s")]
    private partial void LogOpenFailed(string port, string sandbox, string reason, double retrySeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "PROXY v2 relay waits for the ingress sandbox {Sandbox} ({Reason})")]
    private partial void LogSandboxMissing(string sandbox, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "PROXY v2 relay: the ingress sandbox {Sandbox} was recreated; reopening its {Count} listeners there")]
    private partial void LogSandboxChanged(string sandbox, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "PROXY v2 relay could not read the state; keeping its listeners, retrying in {RetrySeconds} s")]
    private partial void LogStateFailed(Exception exception, double retrySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "PROXY v2 relay: store unavailable ({Reason}); serving the last known backends")]
    private partial void LogStoreUnavailable(string reason);
}
