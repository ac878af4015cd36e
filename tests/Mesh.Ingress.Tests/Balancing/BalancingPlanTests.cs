using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Http;
using Mesh.Ingress.Tests.Dataplane;
using Mesh.Ipvs;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Model;
using ClusterState = Mesh.Discovery.Model.ClusterState;

namespace Mesh.Ingress.Tests.Balancing;

/// <summary>What <c>--lb</c> and <c>--affinity</c> turn into in each dataplane: nft rules, IPVS services, YARP clusters.</summary>
public sealed class BalancingPlanTests
{
    private static ClusterState State(ServiceSpec spec, int tasks = 4)
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, spec).State;
        for (var i = 0; i < tasks; i++)
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Service = spec.Name, Node = "n1" }).State;
        }

        return state;
    }

    [Fact]
    public void Nft_round_robin_is_numgen_and_maglev_or_source_ip_is_jhash_of_the_source_over_a_251_bucket_maglev_table()
    {
        var rr = IngressSandboxTable.Build(State(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] }), "10.255.0.2");
        Assert.StartsWith("tcp . 8080 : goto pick-rr-4 { 0 : 10.255.0.", SandboxTableText.Port(rr, "tcp . 8080"), StringComparison.Ordinal);
        Assert.Equal("dnat ip addr . port to meta l4proto . th dport . numgen inc mod 4 map @backends", SandboxTableText.Chain(rr, "pick-rr-4"));

        foreach (var spec in new[]
                 {
                     new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], LoadBalancing = LoadBalancing.Maglev },
                     new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Affinity = Affinity.SourceIp },
                 })
        {
            var state = State(spec);
            var table = IngressSandboxTable.Build(state, "10.255.0.2");
            Assert.Equal("dnat ip addr . port to meta l4proto . th dport . jhash ip saddr mod 251 seed 0x4d455348 map @maglev", SandboxTableText.Chain(table, "pick-maglev-251"));
            var port = SandboxTableText.Port(table, "tcp . 8080")!;
            Assert.StartsWith("tcp . 8080 : goto pick-maglev-251 { 0 : 10.255.0.", port, StringComparison.Ordinal);
            var elements = port[(port.IndexOf(" { ", StringComparison.Ordinal) + 3)..^2].Split(", ");
            Assert.Equal(251, elements.Length);
            var addresses = state.Tasks.Select(t => t.Addresses["ingress"] + " . 80").ToHashSet();
            Assert.All(elements, e => Assert.Contains(e.Split(" : ")[1], addresses));
            Assert.All(elements.GroupBy(e => e.Split(" : ")[1]), g => Assert.InRange(g.Count(), 62, 63));
        }
    }

    [Fact]
    public void Ipvs_maglev_is_the_mh_scheduler_and_source_ip_is_persistence()
    {
        var options = new IpvsOptions();
        IpvsService Service(ServiceSpec spec)
        {
            var state = State(spec);
            var service = state.Services.Single();
            return IpvsDesiredService.For(service.Name, (uint)service.FirewallMark, BackendSet.For(BackendSet.RunningTasksByService(state), service, OverlayNetwork.IngressName), options).Service;
        }

        var rr = Service(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        Assert.Equal(("rr", IpvsServiceFlags.None), (rr.Scheduler, rr.Flags));
        var mh = Service(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], LoadBalancing = LoadBalancing.Maglev, Affinity = Affinity.SourceIp });
        Assert.Equal(("mh", IpvsServiceFlags.None), (mh.Scheduler, mh.Flags));
        var sticky = Service(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Affinity = Affinity.SourceIp });
        Assert.Equal(("rr", IpvsServiceFlags.Persistent, IpvsDesiredService.PersistenceSeconds), (sticky.Scheduler, sticky.Flags, sticky.Timeout));
    }

    [Theory]
    [InlineData(LoadBalancing.RoundRobin, Affinity.None, "RoundRobin", null)]
    [InlineData(LoadBalancing.LeastRequests, Affinity.None, "LeastRequests", null)]
    [InlineData(LoadBalancing.PowerOfTwo, Affinity.Cookie, "PowerOfTwoChoices", "HashCookie")]
    [InlineData(LoadBalancing.Maglev, Affinity.None, "Maglev", null)]
    [InlineData(LoadBalancing.RoundRobin, Affinity.SourceIp, "Maglev", null)]
    public void Yarp_gets_the_policy_and_the_affinity_cookie(LoadBalancing lb, Affinity affinity, string policy, string? cookie)
    {
        var state = State(new ServiceSpec { Name = "shop", Routes = [ServiceRoute.Parse("shop.test/=80")], LoadBalancing = lb, Affinity = affinity });
        var cluster = Assert.Single(HttpRouteTable.Build(state).Clusters);
        Assert.Equal(policy, cluster.LoadBalancingPolicy);
        Assert.Equal(cookie, cluster.SessionAffinity?.Policy);
        Assert.Equal(cookie is null ? null : HttpRouteTable.AffinityCookie, cluster.SessionAffinity?.AffinityKeyName);
    }

    [Fact]
    public void Yarps_maglev_policy_keeps_a_client_on_its_destination_and_spreads_clients()
    {
        var policy = new MaglevLoadBalancingPolicy();
        var destinations = Enumerable.Range(1, 4).Select(i => new DestinationState($"shop.{i}")).ToArray();
        DestinationState Pick(string client, IReadOnlyList<DestinationState> from)
        {
            var context = new DefaultHttpContext();
            context.Connection.RemoteIpAddress = IPAddress.Parse(client);
            return policy.PickDestination(context, null!, from)!;
        }

        var first = Pick("198.18.4.1", destinations);
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Same(first, Pick("198.18.4.1", destinations)));
        Assert.Equal(4, Enumerable.Range(0, 200).Select(i => Pick($"198.18.5.{i}", destinations).DestinationId).Distinct().Count());
        Assert.Null(policy.PickDestination(new DefaultHttpContext(), null!, []));
    }
}
