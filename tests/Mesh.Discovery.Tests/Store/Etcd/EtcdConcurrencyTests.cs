using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>Two daemons (two EtcdStore instances, each with its own connections) allocating at the same time.</summary>
[RequiresEtcd]
public sealed class EtcdConcurrencyTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [StoreFact]
    public async Task Two_daemons_creating_hundreds_of_services_never_hand_out_an_address_mark_or_port_twice()
    {
        const int perDaemon = 150;
        var prefix = $"/mesh-race-{Guid.NewGuid():N}/";
        await using var a = new EtcdStore(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = prefix });
        await using var b = new EtcdStore(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = prefix });
        await a.CreateNetworkAsync(new NetworkSpec { Name = "appnet", Subnet = "10.0.0.0/16", Vni = 4097 });

        // Daemon a creates s0..s149, daemon b creates t0..t149; each publishes port 20000 + i % 200, so the two
        // daemons' services 0..49 and 100..149 collide on ports (every port has exactly two claimants there).
        async Task<List<(string Name, object Outcome)>> Run(IClusterStore store, string letter)
        {
            var calls = Enumerable.Range(0, perDaemon).Select(async i =>
            {
                var name = $"{letter}{i}";
                try
                {
                    return (name, (object)await store.CreateServiceAsync(new ServiceSpec
                    {
                        Name = name,
                        Ports = [new PublishedPort(20_000 + (letter == "s" ? i : (i + 100) % 200), 80)],
                        Networks = ["appnet"],
                    }));
                }
                catch (ConflictException e)
                {
                    return (name, (object)e);
                }
            });
            return [.. await Task.WhenAll(calls)];
        }

        var outcomes = (await Task.WhenAll(Run(a, "s"), Run(b, "t"))).SelectMany(x => x).ToList();
        var created = outcomes.Select(o => o.Outcome).OfType<ClusterService>().ToList();
        var refused = outcomes.Select(o => o.Outcome).OfType<ConflictException>().ToList();

        Assert.Equal(2 * perDaemon, created.Count + refused.Count);
        Assert.All(refused, e => Assert.Matches(@"^port \d+/tcp is already published by service '[st]\d+'$", e.Message));
        // Ports 20000..20199 were asked for: 100 uncontested, 100 by both daemons → exactly 200 winners.
        Assert.Equal(200, created.Count);
        Assert.Equal(100, refused.Count);

        var state = await b.GetStateAsync();
        Assert.Equal(created.Select(s => s.Name).Order(), state.Services.Select(s => s.Name).Order());
        Assert.Equal(200, state.Services.SelectMany(s => s.Ports).Select(p => p.Published).Distinct().Count());
        Assert.Equal(200, state.Services.Select(s => s.FirewallMark).Distinct().Count());
        Assert.Equal(200, state.Services.Select(s => s.Vips["ingress"]).Distinct().Count());
        Assert.Equal(200, state.Services.Select(s => s.Vips["appnet"]).Distinct().Count());
        foreach (var service in created) // what each caller was told is what the store holds
        {
            var stored = state.Services.Single(s => s.Name == service.Name);
            Assert.Equal(service.FirewallMark, stored.FirewallMark);
            Assert.Equal(service.Vips["ingress"], stored.Vips["ingress"]);
        }
    }

    [StoreFact]
    public async Task Two_daemons_adding_tasks_in_parallel_get_distinct_task_addresses_and_names()
    {
        var prefix = $"/mesh-race-{Guid.NewGuid():N}/";
        await using var a = new EtcdStore(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = prefix });
        await using var b = new EtcdStore(new EtcdStoreOptions { Endpoints = [fixture.Etcd!.ClientUrl], Prefix = prefix });
        await a.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await b.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        await a.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });

        var adds = Enumerable.Range(0, 80).Select(i => (i % 2 == 0 ? a : b).AddTaskAsync(new TaskSpec { Service = "web", Node = i % 2 == 0 ? "n1" : "n2" }));
        var tasks = await Task.WhenAll(adds);

        Assert.Equal(80, tasks.Select(t => t.Name).Distinct().Count());
        var state = await a.GetStateAsync();
        var ingressIps = state.Tasks.Select(t => t.Addresses["ingress"])
            .Concat(state.Nodes.Select(n => n.IngressSandboxIp))
            .Concat(state.Services.Select(s => s.Vips["ingress"]))
            .ToList();
        Assert.Equal(80 + 2 + 1, ingressIps.Count);
        Assert.Equal(ingressIps.Count, ingressIps.Distinct().Count());
    }
}
