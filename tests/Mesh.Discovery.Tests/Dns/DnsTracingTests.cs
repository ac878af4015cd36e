using System.Collections.Concurrent;
using System.Diagnostics;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>
/// A forwarded query is a <c>mesh.dns.forward</c> span on the "Mesh" source with the question, the task, the
/// revision of the state the resolver answered from, and the upstream's rcode or why there was none; a query
/// answered locally is no span at all.
/// </summary>
public sealed class DnsTracingTests
{
    [Fact]
    public async Task Forwarded_queries_are_spans_with_the_revision_and_the_outcome_and_local_answers_are_not()
    {
        var task = $"trace-{Guid.NewGuid():N}"; // other tests' spans on the process-wide source are told apart by it
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == DnsMetrics.MeterName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.GetTagItem("mesh.task") as string == task) spans.Enqueue(a);
            },
        };
        ActivitySource.AddActivityListener(listener);
        var handler = new DnsRequestHandler(new RevisedAuthority(17), new FakeForwarder(), DnsMetrics.Shared, null);

        foreach (var name in new[] { "nxthing.example", "failing.example", "web.mesh" })
        {
            var m = new DnsMessage { Id = 1, RecursionDesired = true };
            m.Questions.Add(new DnsQuestion(DnsName.Parse(name), DnsType.A));
            await handler.HandleAsync(m.ToArray(), new byte[65535], new DnsClientContext(task, null, DnsTransport.Udp), CancellationToken.None);
        }

        Assert.Equal(2, spans.Count);
        var nx = spans.Single(s => (string?)s.GetTagItem("dns.question.name") == "nxthing.example");
        Assert.Equal(DnsTracing.ForwardSpan, nx.OperationName);
        Assert.Equal(ActivityKind.Client, nx.Kind);
        Assert.Equal(17L, nx.GetTagItem("mesh.revision"));
        Assert.Equal("A", nx.GetTagItem("dns.question.type"));
        Assert.Equal("udp", nx.GetTagItem("network.transport"));
        Assert.Equal("NXDOMAIN", nx.GetTagItem("dns.response.rcode"));
        Assert.Equal("fake", nx.GetTagItem("mesh.dns.upstreams"));
        Assert.Equal(ActivityStatusCode.Unset, nx.Status);

        var failed = spans.Single(s => (string?)s.GetTagItem("dns.question.name") == "failing.example");
        Assert.Equal(ActivityStatusCode.Error, failed.Status);
        Assert.Equal("timeout", failed.StatusDescription);
        Assert.Null(failed.GetTagItem("dns.response.rcode"));
    }

    /// <summary>The fake authority's answers, from a state at a known revision.</summary>
    private sealed class RevisedAuthority(long revision) : IDnsAuthority
    {
        private readonly FakeAuthority _inner = new();

        public long Revision => revision;

        public DnsLookupResult Lookup(DnsQuestion question, DnsClientContext context) => _inner.Lookup(question, context);
    }
}
