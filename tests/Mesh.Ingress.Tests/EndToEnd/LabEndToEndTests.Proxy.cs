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
/// PROXY protocol v2 (issue 11 part 2), from mesh-client (198.18.0.100) through every node: one service, <c>pweb</c>,
/// publishes the lab server (tcp and udp), nginx (<c>listen … proxy_protocol</c>) and haproxy (<c>accept-proxy</c>)
/// with <c>proxy=v2</c>; each of them reports the client's address, which only the relay's header can have told it
/// (the relay connects from the sandbox). A removed task gets no new connection while one already open finishes
/// there. The service and its tasks are removed afterwards: every node's rules are as before.
/// </summary>
public sealed partial class LabEndToEndTests
{
    [LabFact]
    public async Task T8p_proxy_v2_tells_the_lab_server_nginx_and_haproxy_the_client_address_through_every_node_and_a_removed_task_drains()
    {
        const int Lab = 8096, Nginx = 8097, Haproxy = 8098;
        var before = await AllRulesAsync();
        var dir = Directory.CreateTempSubdirectory("mesh-t8p-");
        var receivers = new List<Process>();
        Socket? kept = null;
        try
        {
            var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", "pweb",
                "--publish", $"{Lab}:80,proxy=v2", "--publish", $"{Lab}:80/udp,proxy=v2", "--publish", $"{Nginx}:81,proxy=v2", "--publish", $"{Haproxy}:82,proxy=v2");
            Assert.True(create.ExitCode == 0, create.Stderr);
            var cluster = new LabCluster(new ProcessCommandRunner(), TextWriter.Null);
            var store = ApiClientFactory.Store(LabPlan.Api("mesh-n1"));
            await cluster.StartTaskAsync(store, "pweb.1", 1, CancellationToken.None);
            await cluster.StartTaskAsync(store, "pweb.2", 2, CancellationToken.None);
            Assert.Contains($"{Lab}:80/tcp,proxy=v2", (await Shell.MeshApiAsync("mesh-n3", "service", "ls")).Stdout, StringComparison.Ordinal);

            // The lab server: both tasks from every node (round robin), each told the client by the header, while the
            // socket's peer is the relay in the sandbox (10.255.x.y).
            foreach (var node in LabFixture.NodeAddresses)
            {
                await EventuallyAsync(async () =>
                {
                    var answers = await GetManyAsync(node, Lab, 4);
                    Assert.Equal(["pweb.1", "pweb.2"], answers.Select(a => a.Split(' ')[0]).Distinct().Order());
                    Assert.All(answers, a => Assert.Contains($" proxy={Client}:", a, StringComparison.Ordinal));
                    Assert.All(answers, a => Assert.Contains(" peer=10.255.", a, StringComparison.Ordinal));
                }, attempts: 100);

                var datagram = await UdpAsync(node, Lab);
                Assert.StartsWith("pweb.", datagram, StringComparison.Ordinal);
                Assert.Contains($" proxy={Client}:", datagram, StringComparison.Ordinal);
            }

            // Drain: a connection open on pweb.2 when it is removed is still answered by it; new ones all go to pweb.1.
            // It is made through pweb.2's own node: a removed task's overlay entries leave every other node at once
            // (no FDB or neighbour entry for it), so from there its packets could not arrive whatever the relay does.
            for (var i = 0; i < 4 && kept is null; i++)
            {
                var socket = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                await socket.ConnectAsync(IPAddress.Parse("198.18.0.12"), Lab);
                if (await GetOnAsync(socket).WaitAsync(TimeSpan.FromSeconds(10)) == "pweb.2")
                {
                    kept = socket;
                }
                else
                {
                    socket.Dispose();
                }
            }

            Assert.NotNull(kept);
            Assert.Equal(0, (await Shell.MeshApiAsync("mesh-n1", "task", "rm", "pweb.2")).ExitCode);
            foreach (var node in LabFixture.NodeAddresses)
            {
                await EventuallyAsync(async () => Assert.All(await GetManyAsync(node, Lab, 4), a => Assert.StartsWith("pweb.1 ", a, StringComparison.Ordinal)), attempts: 100);
            }

            Assert.Equal("pweb.2", await GetOnAsync(kept).WaitAsync(TimeSpan.FromSeconds(10)));

            // Real receivers in pweb.1's namespace: each logs the client's address it read from the header.
            File.WriteAllText(Path.Combine(dir.FullName, "nginx.conf"), $$"""
                daemon off;
                master_process off;
                worker_processes 1;
                pid {{dir.FullName}}/nginx.pid;
                error_log {{dir.FullName}}/error.log;
                events { worker_connections 64; }
                http {
                  log_format proxied 'client=$proxy_protocol_addr peer=$remote_addr';
                  client_body_temp_path {{dir.FullName}}/body;
                  server {
                    listen 81 proxy_protocol;
                    access_log {{dir.FullName}}/access.log proxied;
                    location / { return 200 "nginx $proxy_protocol_addr\n"; }
                  }
                }
                """);
            File.WriteAllText(Path.Combine(dir.FullName, "haproxy.cfg"), """
                global
                  log stdout format raw local0
                defaults
                  mode http
                  log global
                  log-format "haproxy client=%ci"
                  timeout connect 5s
                  timeout client 10s
                  timeout server 10s
                frontend relayed
                  bind :82 accept-proxy
                  http-request return status 200 content-type text/plain lf-string "haproxy %[src]\n"

                """); // haproxy refuses a last line without its LF
            receivers.Add(StartIn("mesh-pweb.1", "nginx", "-c", Path.Combine(dir.FullName, "nginx.conf"), "-e", Path.Combine(dir.FullName, "error.log")));
            var haproxy = StartIn("mesh-pweb.1", "haproxy", "-db", "-f", Path.Combine(dir.FullName, "haproxy.cfg"));
            receivers.Add(haproxy);
            var haproxyLog = new StringBuilder();
            haproxy.OutputDataReceived += (_, e) =>
            {
                lock (haproxyLog)
                {
                    haproxyLog.AppendLine(e.Data);
                }
            };
            haproxy.BeginOutputReadLine();

            foreach (var node in LabFixture.NodeAddresses)
            {
                await EventuallyAsync(async () => Assert.Equal($"nginx {Client}", Assert.Single(await GetManyAsync(node, Nginx, 1))), attempts: 50);
                await EventuallyAsync(async () => Assert.Equal($"haproxy {Client}", Assert.Single(await GetManyAsync(node, Haproxy, 1))), attempts: 50);
            }

            var access = File.ReadAllLines(Path.Combine(dir.FullName, "access.log"));
            Assert.True(access.Length >= 3, string.Join('\n', access));
            Assert.All(access, l => Assert.StartsWith($"client={Client} peer=10.255.", l, StringComparison.Ordinal));
            await EventuallyAsync(() =>
            {
                lock (haproxyLog)
                {
                    var lines = haproxyLog.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
                    Assert.True(lines.Count(l => l.Trim() == $"haproxy client={Client}") >= 3, haproxyLog.ToString());
                }

                return Task.CompletedTask;
            }, attempts: 30);

            // The relay counts on the Mesh meter.
            var metrics = await Shell.CheckedAsync("curl", "-s", "-m", "3", "--unix-socket", "/run/mesh/lab/mesh-n3.sock", "http://mesh/metrics");
            Assert.Contains("mesh_proxy_connections_total{", metrics, StringComparison.Ordinal);
            Assert.Contains("service=\"pweb\"", metrics, StringComparison.Ordinal);
        }
        finally
        {
            kept?.Dispose();
            foreach (var p in receivers)
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                }

                await p.WaitForExitAsync();
                p.Dispose();
            }

            await Shell.MeshApiAsync("mesh-n1", "service", "rm", "pweb");
            await RemoveTaskNamespaceAsync("mesh-pweb.1");
            await RemoveTaskNamespaceAsync("mesh-pweb.2");
            dir.Delete(recursive: true);
        }

        await EventuallyAsync(async () => Assert.Equal(before, await AllRulesAsync()), attempts: 100);
        // The relay's listener is gone with the service: nothing takes the port any more.
        await EventuallyAsync(async () => Assert.Equal(7, (await CurlAsync("198.18.0.11", Lab)).ExitCode), attempts: 50);
    }

    /// <summary>A receiver started inside a namespace; it must exist and stay up (a missing nginx or haproxy fails the test).</summary>
    private static Process StartIn(string netns, string file, params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", netns, file, .. args])
        {
            start.ArgumentList.Add(a);
        }

        var process = Process.Start(start)!;
        if (process.WaitForExit(500))
        {
            Assert.Fail($"{file} exited at once ({process.ExitCode}): {process.StandardError.ReadToEnd()} {process.StandardOutput.ReadToEnd()} (installed by scripts/install-deps.sh test?)");
        }

        process.ErrorDataReceived += (_, _) => { }; // drained, so a chatty receiver never blocks on a full pipe
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>One datagram from a new socket in the client's namespace (a new flow); the answer.</summary>
    private static async Task<string> UdpAsync(string node, int port)
    {
        using var udp = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        udp.Connect(IPAddress.Parse(node), port);
        var buffer = new byte[512];
        for (var attempt = 0; ; attempt++)
        {
            await udp.SendAsync("who?"u8.ToArray());
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                var n = await udp.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                return Encoding.ASCII.GetString(buffer, 0, n).Trim();
            }
            catch (Exception) when (attempt < 2)
            {
                // UDP may lose a datagram; two more tries
            }
        }
    }
}
