using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// "Deregister first, let connections drain, then stop the task": a connection open through another node to a task
/// that is deregistered must go on. It crosses the overlay from node 3's sandbox, through node 3's neighbour and FDB
/// entries for the task, which used to go with the task's record (the churn scenario lost the requests in flight at
/// each deregistration). Service "dr" has one task, dr.1 on node 1; a connection from mesh-client through node 3 is
/// opened, dr.1 is removed with <c>mesh task rm</c>, and only once every node applied that is the request sent on it.
/// </summary>
public sealed partial class LabEndToEndTests
{
    [LabFact]
    public async Task T8d_a_connection_open_to_a_task_that_is_deregistered_is_answered_by_it_through_another_node()
    {
        var before = await AllRulesAsync();
        Socket? held = null;
        try
        {
            var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", "dr", "--publish", "8096:80");
            Assert.True(create.ExitCode == 0, create.Stderr);
            var task = await new LabCluster(new ProcessCommandRunner(), TextWriter.Null)
                .StartTaskAsync(ApiClientFactory.Store(LabPlan.Api("mesh-n1")), "dr.1", 1, CancellationToken.None);
            var address = task.Addresses["ingress"];
            await EventuallyAsync(async () => Assert.StartsWith("dr.1 ", (await CurlAsync("198.18.0.13", 8096)).Stdout, StringComparison.Ordinal), attempts: 100);

            held = NetworkNamespace.Run("/run/netns/mesh-client", () =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 5000 };
                s.Connect(new IPEndPoint(IPAddress.Parse("198.18.0.13"), 8096));
                return s;
            });

            var rm = await Shell.MeshApiAsync("mesh-n3", "task", "rm", "dr.1");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
            var revision = (await LabStateAsync()).Revision;
            for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
            {
                var node = $"mesh-n{i}";
                await EventuallyAsync(async () => Assert.Equal((revision, (string?)null), await AppliedAsync(node)), attempts: 100);
            }

            // Out of every node's backends: a new connection through node 3 finds no task.
            Assert.NotEqual(0, (await CurlAsync("198.18.0.13", 8096)).ExitCode);

            // The open one still reaches dr.1, which is still running: its request is answered.
            var clock = Stopwatch.StartNew();
            await held.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: dr\r\nConnection: close\r\n\r\n"));
            var answer = new byte[1024];
            var read = await held.ReceiveAsync(answer).WaitAsync(TimeSpan.FromSeconds(5));
            var text = Encoding.ASCII.GetString(answer, 0, read);
            Assert.Contains($"\ndr.1 mesh-n1 {address} ", text, StringComparison.Ordinal);
            Console.WriteLine($"T8d: answered by dr.1 {clock.ElapsedMilliseconds} ms after the request, sent once every node had applied its removal; node 3 still has: " +
                (await Shell.RunAsync("ip", "-n", "mesh-n3", "neigh", "show", address)).Stdout.Trim());
        }
        finally
        {
            held?.Dispose();
            await Shell.MeshApiAsync("mesh-n1", "service", "rm", "dr");
            await RemoveTaskNamespaceAsync("mesh-dr.1");
        }

        // Rules as before (a departed endpoint's overlay entries linger, but no rule does).
        await EventuallyAsync(async () => Assert.Equal(before, await AllRulesAsync()), attempts: 100);
    }
}
