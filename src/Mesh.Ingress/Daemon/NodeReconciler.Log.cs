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

    [LoggerMessage(Level = LogLevel.Information, Message = "Slow node pass for revision {Revision}: {PassMs:0} ms (store read {ReadMs:0} ms, plan {PlanMs:0} ms, overlay gate {GateMs:0} ms, overlay {OverlayMs:0} ms, sandbox links {LinksMs:0} ms, host rules {HostMs:0} ms, sandbox rules {SandboxMs:0} ms)")]
    private partial void LogSlowPass(long revision, double passMs, double readMs, double planMs, double gateMs, double overlayMs, double linksMs, double hostMs, double sandboxMs);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Node pass for revision {Revision}: {PassMs:0.0} ms (store read {ReadMs:0.0} ms, plan {PlanMs:0.0} ms, overlay gate {GateMs:0.0} ms, overlay {OverlayMs:0.0} ms, sandbox links {LinksMs:0.0} ms, host rules {HostMs:0.0} ms, sandbox rules {SandboxMs:0.0} ms)")]
    private partial void LogNodePass(long revision, double passMs, double readMs, double planMs, double gateMs, double overlayMs, double linksMs, double hostMs, double sandboxMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Slow task pass for revision {Revision}: {PassMs:0} ms (store read {ReadMs:0} ms, egress legs {EgressMs:0} ms, the rest the task namespaces)")]
    private partial void LogSlowTaskPass(long revision, double passMs, double readMs, double egressMs);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task pass for revision {Revision}: {PassMs:0.0} ms (store read {ReadMs:0.0} ms, egress legs {EgressMs:0.0} ms, the rest the task namespaces)")]
    private partial void LogTaskPass(long revision, double passMs, double readMs, double egressMs);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The {Loop} loop woke after {WaitedMs:0.0} ms of waiting for a change; the rate limit held it {HeldMs:0.0} ms more")]
    private partial void LogWoke(string loop, double waitedMs, double heldMs);
}
