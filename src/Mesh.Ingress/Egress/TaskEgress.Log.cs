using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Egress;

public sealed partial class TaskEgress
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Egress leg of task {Task}: {HostVeth} on the gateway bridge, {Address} inside")]
    private partial void LogLeg(string task, string hostVeth, string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Egress leg of task {Task} not converged: {Reason}")]
    private partial void LogLegFailed(string task, string reason);
}
