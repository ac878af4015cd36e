using System.Net;
using Microsoft.Extensions.Logging;

namespace Mesh.Discovery.Dns;

public sealed partial class EmbeddedDnsServer
{
    /// <summary>Source-generated log messages of the embedded DNS server (event ids 4100–4199).</summary>
    internal static partial class Log
    {
        [LoggerMessage(EventId = 4100, Level = LogLevel.Information, Message = "Embedded DNS for task {TaskId} serving udp {UdpEndPoint} tcp {TcpEndPoint}, {UpstreamCount} upstream server(s)")]
        public static partial void Started(ILogger logger, string taskId, EndPoint? udpEndPoint, EndPoint? tcpEndPoint, int upstreamCount);

        [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Embedded DNS for task {TaskId} stopped")]
        public static partial void Stopped(ILogger logger, string taskId);

        [LoggerMessage(EventId = 4102, Level = LogLevel.Error, Message = "DNS authority failed for {QueryName} {QueryType} (task {TaskId}); answering SERVFAIL")]
        public static partial void AuthorityFailed(ILogger logger, Exception exception, string taskId, string queryName, DnsType queryType);

        [LoggerMessage(EventId = 4103, Level = LogLevel.Debug, Message = "Malformed DNS query from task {TaskId} over {Transport}: {Reason}")]
        public static partial void Malformed(ILogger logger, string taskId, DnsTransport transport, string reason);

        [LoggerMessage(EventId = 4104, Level = LogLevel.Warning, Message = "No upstream answered {QueryName} {QueryType} (task {TaskId}, upstreams {Upstreams}, reason {Reason}); answering SERVFAIL. {Suppressed} more failure(s) of these upstreams since the previous line (at most one line per {IntervalSeconds} s; mesh.dns.upstream.failures counts them all)")]
        public static partial void UpstreamFailed(ILogger logger, string taskId, string queryName, DnsType queryType, string upstreams, string reason, long suppressed, double intervalSeconds);

        [LoggerMessage(EventId = 4105, Level = LogLevel.Debug, Message = "Upstream {Upstream} over {Transport} failed for {QueryName}: {Error}")]
        public static partial void UpstreamTryFailed(ILogger logger, EndPoint upstream, string transport, string queryName, string error);

        [LoggerMessage(EventId = 4106, Level = LogLevel.Warning, Message = "Embedded DNS socket error (task {TaskId}, {Transport}): {Error}")]
        public static partial void SocketError(ILogger logger, string taskId, DnsTransport transport, string error);

        [LoggerMessage(EventId = 4107, Level = LogLevel.Warning, Message = "Embedded DNS for task {TaskId}: too many {What} ({Limit}); shedding")]
        public static partial void Overloaded(ILogger logger, string taskId, string what, int limit);

        [LoggerMessage(EventId = 4108, Level = LogLevel.Warning, Message = "Embedded DNS for task {TaskId}: upstream {Upstream} not used, it is {Reason} (forwarding there would loop)")]
        public static partial void UpstreamIsSelf(ILogger logger, string taskId, EndPoint upstream, string reason);
    }
}
