using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

public sealed partial class NodeReconciler
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} registered (advertise {AdvertiseAddress}, ingress sandbox {SandboxIp}), dataplane {Dataplane}")]
    private partial void LogRegistered(string node, string advertiseAddress, string sandboxIp, string dataplane);

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied {Object} changes for revision {Revision}")]
    private partial void LogKernelChanged(string @object, long revision);

    [LoggerMessage(Level = LogLevel.Error, Message = "Reconcile failed; dataplane left as it was, retrying in {RetryMs} ms")]
    private partial void LogSyncFailed(Exception exception, double retryMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Health verdicts changed (version {HealthVersion}): planning the node's backends again from the state it has")]
    private partial void LogHealthPass(long healthVersion);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Store unavailable: {Reason}; serving the last known state")]
    private partial void LogStoreUnavailable(string reason);
}
