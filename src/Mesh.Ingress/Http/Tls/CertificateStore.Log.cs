using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Http.Tls;

public sealed partial class CertificateStore
{
    [LoggerMessage(Level = LogLevel.Information, Message = "HTTPS entry: certificate for {Host} from {File}: {Certificate}")]
    private partial void LogLoaded(string host, string file, string certificate);

    [LoggerMessage(Level = LogLevel.Information, Message = "HTTPS entry: {File} is gone; {Host} is no longer served over TLS")]
    private partial void LogRemoved(string host, string file);

    [LoggerMessage(Level = LogLevel.Error, Message = "HTTPS entry: refused {File}: {Reason}")]
    private partial void LogRefused(string file, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "HTTPS entry: serving {Hosts} host certificates from {Directory}")]
    private partial void LogServing(int hosts, string directory);

    [LoggerMessage(Level = LogLevel.Error, Message = "HTTPS entry: cannot read {Directory}; keeping the certificates loaded before")]
    private partial void LogScanFailed(Exception exception, string directory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "HTTPS entry: watching {Directory} failed; rescanning it")]
    private partial void LogWatchError(Exception exception, string directory);
}
