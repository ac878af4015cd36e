using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Daemon;

/// <summary>A daemon whose registration the store refuses keeps running, says why, and registers once the cause is gone.</summary>
public sealed class NodeRegistrationTests
{
    [Fact]
    public async Task Five_thousand_fake_nodes_then_a_real_daemon_it_waits_with_a_clear_error_and_registers_after_node_rm()
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        var refused = 0;
        for (var i = 0; i < 5_000; i++)
        {
            try
            {
                await store.RegisterNodeAsync(new NodeSpec { Name = $"fake{i}", AdvertiseAddress = $"192.0.{i / 250}.{(i % 250) + 1}" });
            }
            catch (ConflictException)
            {
                refused++;
            }
        }

        Assert.Equal(5_000 - Limits.MaxNodes, refused);
        var status = new NodeStatus { Node = "real", Store = "embedded" };
        var registration = new NodeRegistration(store, new DaemonOptions { Node = "real", AdvertiseAddress = "198.18.0.11" }, status, NullLogger.Instance)
        {
            MaxRefusedDelay = TimeSpan.FromMilliseconds(50),
        };

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var registering = registration.RegisterAsync(stop.Token);
        await Task.Delay(500);
        Assert.False(registering.IsCompleted, "registration should wait, not fail (a fault here stops the daemon)");
        Assert.Contains("node real could not register", status.LastError, StringComparison.Ordinal);
        Assert.Contains($"the most it may have ({Limits.MaxNodes})", status.LastError, StringComparison.Ordinal);

        var freed = (await store.GetStateAsync()).Nodes.Single(n => n.Name == "fake7").IngressSandboxIp;
        await store.RemoveNodeAsync("fake7");
        var node = await registering.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("real", node.Name);
        Assert.Equal(freed, node.IngressSandboxIp);
    }

    [Fact]
    public async Task Stopping_the_daemon_ends_a_refused_registration()
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        await store.RegisterNodeAsync(new NodeSpec { Name = "other", AdvertiseAddress = "198.18.0.11" });
        var status = new NodeStatus { Node = "real", Store = "embedded" };
        var registration = new NodeRegistration(store, new DaemonOptions { Node = "real", AdvertiseAddress = "198.18.0.11" }, status, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var registering = registration.RegisterAsync(stop.Token);
        await Task.Delay(300);
        Assert.Contains("already registered by node 'other'", status.LastError, StringComparison.Ordinal);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => registering.WaitAsync(TimeSpan.FromSeconds(5)));
    }
}
