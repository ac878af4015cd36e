using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Telemetry.L4;

public sealed partial class L4BackendMetrics
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "L4 backend metrics: read {Source} in the ingress sandbox, {Series} series, {Milliseconds:0.0} ms")]
    private partial void LogRead(string source, int series, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "L4 backend metrics: the {Source} dump stopped at {Limit} entries; connection counts are low until the table shrinks")]
    private partial void LogTruncated(string source, int limit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "L4 backend metrics: this node has {Backends} backends, series cover the first {Covered} by service, port and task (up to service {LastService}); raise --l4-metrics-backends for the rest")]
    private partial void LogNotCovered(int backends, int covered, string lastService);

    [LoggerMessage(Level = LogLevel.Warning, Message = "L4 backend metrics: reading {Source} in the ingress sandbox failed; no L4 backend series until the next read ({Seconds} s)")]
    private partial void LogReadFailed(Exception exception, string source, double seconds);
}
