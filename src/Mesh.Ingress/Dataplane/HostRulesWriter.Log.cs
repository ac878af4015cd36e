using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Dataplane;

public sealed partial class HostRulesWriter
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Removed Mesh's iptables rules from {Where}: the nftables dataplane keeps them in nf_tables now (FORWARD accepts kept in iptables: {ForwardKept})")]
    private partial void LogIptablesRemoved(string where, bool forwardKept);
}
