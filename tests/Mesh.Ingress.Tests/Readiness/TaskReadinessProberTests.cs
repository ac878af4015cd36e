using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Readiness;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Readiness;

/// <summary>
/// A node's starting tasks become running when their port accepts a connection from the node's ingress sandbox, and
/// failed when it does not in time. Real sockets in a real namespace standing in for the sandbox: the tasks' ingress
/// addresses are on its loopback, so a task "listens" when the test opens a listener there.
/// </summary>
public sealed class TaskReadinessProberTests : IAsyncLifetime
{
    // Not mesh-*: the lab's `lab down` (run by other tests in parallel) deletes mesh-* namespaces.
    private readonly string _sandbox = $"readytest-{Environment.ProcessId}";

    public async Task InitializeAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }

        await Shell.RunAsync("ip", "netns", "del", _sandbox);
        await Shell.CheckedAsync("ip", "netns", "add", _sandbox);
        await Shell.CheckedAsync("ip", "-n", _sandbox, "link", "set", "lo", "up");
        await Shell.CheckedAsync("ip", "-n", _sandbox, "addr", "add", "10.255.0.50/32", "dev", "lo");
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _sandbox);
        }
    }

    [Fact]
    public void Only_this_nodes_starting_tasks_are_probed_on_the_services_lowest_tcp_target()
    {
        var s = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        s = StateTransitions.RegisterNode(s, new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 8080), new PublishedPort(8081, 53, TransportProtocol.Udp)], Routes = [ServiceRoute.Parse("web.test/=81")] }).State;
        s = StateTransitions.AddTask(s, new TaskSpec { Service = "web", Node = "n1", State = TaskState.Starting }).State;
        s = StateTransitions.AddTask(s, new TaskSpec { Service = "web", Node = "n1" }).State;
        s = StateTransitions.AddTask(s, new TaskSpec { Service = "web", Node = "n2", State = TaskState.Starting }).State;

        var target = Assert.Single(TaskReadinessProber.Targets(s, "n1"));
        Assert.Equal(new TaskReadinessProber.Target("web.1", "web", s.Tasks[0].Addresses["ingress"], 81), target);
        Assert.Equal("web.3", Assert.Single(TaskReadinessProber.Targets(s, "n2")).Task);
    }

    [LabFact]
    public async Task A_starting_task_runs_once_its_port_accepts_and_one_that_never_listens_fails_at_the_timeout()
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", State = TaskState.Starting, Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.50" } });

        var network = new NodeNetworkOptions { IngressSandbox = _sandbox };
        var options = new DaemonOptions { Node = "n1", AdvertiseAddress = "198.18.0.11", Network = network };
        var readiness = new TaskReadinessOptions { Interval = TimeSpan.FromMilliseconds(50), ConnectTimeout = TimeSpan.FromMilliseconds(200), StartTimeout = TimeSpan.FromSeconds(2) };
        using var prober = new TaskReadinessProber(store, new IngressSandbox(new NetlinkLinks(), network), options, readiness, NullLogger<TaskReadinessProber>.Instance);
        await prober.StartAsync(CancellationToken.None);
        try
        {
            // Refused connects: it stays starting.
            await Task.Delay(400);
            Assert.Equal(TaskState.Starting, await StateAsync(store, "web.1"));

            // Its server listens: running within a few intervals.
            using var listener = NetworkNamespaceSockets.CreateSocket(NetworkNamespacePath.Named(_sandbox).Path!, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Parse("10.255.0.50"), 80));
            listener.Listen();
            var clock = Stopwatch.StartNew();
            while (await StateAsync(store, "web.1") != TaskState.Running)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), "web.1 listens but is not running after 1 s");
                await Task.Delay(20);
            }

            // One that never listens (an address nothing answers on) is failed after the start timeout, not before.
            await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", State = TaskState.Starting, Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.51" } });
            clock.Restart();
            while (await StateAsync(store, "web.2") == TaskState.Starting)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), "web.2 is still starting 5 s after it was added (timeout 2 s)");
                await Task.Delay(50);
            }

            Assert.Equal(TaskState.Failed, await StateAsync(store, "web.2"));
            Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1.5), $"web.2 failed after {clock.Elapsed.TotalMilliseconds:0} ms, before its 2 s timeout");
            Assert.Equal(TaskState.Running, await StateAsync(store, "web.1"));
        }
        finally
        {
            await prober.StopAsync(CancellationToken.None);
        }
    }

    private static async Task<TaskState> StateAsync(IClusterStore store, string task) =>
        (await store.GetStateAsync()).Tasks.Single(t => t.Name == task).State;
}
