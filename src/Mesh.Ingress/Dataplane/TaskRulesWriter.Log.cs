using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Dataplane;

public sealed partial class TaskRulesWriter
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Removed Mesh's iptables rules from task namespace {Netns}: the nftables dataplane keeps them in nf_tables now")]
    private partial void LogIptablesRemoved(string netns);
}
