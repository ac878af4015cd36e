using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;
using Xunit.Abstractions;

namespace Mesh.Discovery.Tests.Naming;

/// <summary>
/// Bytes allocated per query on the embedded resolver's answer path (parse, lookup, write), measured on this thread.
/// Garbage per query is what made the resolver collect every few thousand queries (dns-bench in BENCHMARKS.md):
/// 0.5–1.9 KB before the per-network name cache, ~100 B now (the parsed question itself).
/// </summary>
public class DnsAllocationTests(ITestOutputHelper output)
{
    private static (DnsRequestHandler Handler, ClusterDnsAuthority Authority) Build()
    {
        var s = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        s = StateTransitions.CreateNetwork(s, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Networks = ["appnet"], Aliases = ["frontend"] }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "api", Mode = ServiceMode.Dnsrr, Networks = ["appnet"] }).State;
        foreach (var service in new[] { "web", "web", "web", "api", "api" })
        {
            s = StateTransitions.AddTask(s, new TaskSpec { Service = service, Node = "n1" }).State;
        }

        var authority = new ClusterDnsAuthority();
        authority.Update(s);
        return (new DnsRequestHandler(authority, null, DnsMetrics.Shared, null), authority);
    }

    private static byte[] Query(string name, DnsType type = DnsType.A) =>
        new DnsMessage { Id = 7, RecursionDesired = true, Questions = { new DnsQuestion(DnsName.Parse(name), type) }, Edns = new DnsEdns { UdpPayloadSize = 1232 } }.ToArray();

    private static long BytesPerQuery(DnsRequestHandler handler, byte[] query)
    {
        var response = new byte[DnsMessage.MaxMessageSize];
        var ctx = new DnsClientContext("web.1", null, DnsTransport.Udp);
        for (int i = 0; i < 100; i++) Assert.Equal(DnsRequestHandler.Outcome.Respond, handler.HandleLocal(query, response, ctx, out _, out _)); // warm: JIT, lazy caches
        const int n = 1000;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < n; i++) handler.HandleLocal(query, response, ctx, out _, out _);
        return (GC.GetAllocatedBytesForCurrentThread() - before) / n;
    }

    [Theory]
    [InlineData("web", DnsType.A, 200)]
    [InlineData("tasks.web", DnsType.A, 200)]
    [InlineData("FrontEnd", DnsType.A, 200)]
    [InlineData("web.1", DnsType.A, 200)]
    [InlineData("web", DnsType.AAAA, 200)]
    [InlineData("nope", DnsType.A, 200)]
    public void A_query_answered_locally_allocates_little(string name, DnsType type, long bound)
    {
        var (handler, _) = Build();
        long bytes = BytesPerQuery(handler, Query(name, type));
        output.WriteLine($"{name} {type}: {bytes} bytes/query");
        Assert.True(bytes <= bound, $"{name} {type}: {bytes} bytes per query (bound {bound})");
    }
}
