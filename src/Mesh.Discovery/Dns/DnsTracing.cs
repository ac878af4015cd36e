using System.Diagnostics;

namespace Mesh.Discovery.Dns;

/// <summary>
/// The embedded resolver's spans on the "Mesh" activity source: one per query forwarded upstream
/// (<see cref="ForwardSpan"/>). Queries answered locally get none: at tens of thousands per second a span each would
/// cost more than the answer, and the counters of <see cref="DnsMetrics"/> already say what they were.
/// </summary>
internal static class DnsTracing
{
    public const string ForwardSpan = "mesh.dns.forward";

    /// <summary>An ActivitySource is a name to listen to, not state: one per process, like <see cref="DnsMetrics.Shared"/>.</summary>
    public static readonly ActivitySource Source = new(DnsMetrics.MeterName);

    public static Activity? StartForward(in DnsRequestHandler.Query query, DnsClientContext ctx, long revision)
    {
        var activity = Source.StartActivity(ForwardSpan, ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("dns.question.name", query.Question.Name.ToString());
            activity.SetTag("dns.question.type", query.Question.Type.ToString());
            activity.SetTag("network.transport", ctx.Transport == DnsTransport.Tcp ? "tcp" : "udp");
            activity.SetTag("mesh.task", ctx.TaskId);
            activity.SetTag("mesh.revision", revision);
        }

        return activity;
    }

    public static void End(Activity? activity, DnsForwardResult result, string upstreams)
    {
        if (activity is not { IsAllDataRequested: true })
        {
            return;
        }

        activity.SetTag("mesh.dns.upstreams", upstreams);
        if (result.Reply is { Length: >= 4 } reply)
        {
            activity.SetTag("dns.response.rcode", DnsMetrics.RcodeName((DnsResponseCode)(reply[3] & 0xF)));
        }
        else
        {
            activity.SetStatus(ActivityStatusCode.Error, result.FailureReason);
        }
    }
}
