using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Ingress.Tests.Ui;
using Microsoft.Playwright;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>The status page of the lab's store holder in Debian's chromium, headless, driven by Playwright.</summary>
public sealed partial class LabEndToEndTests
{
    /// <summary>Where the test leaves its screenshot: the README shows it.</summary>
    /// <summary>
    /// Where the screenshot goes: beside the test binaries, so a test run leaves the checkout as it was;
    /// MESH_UPDATE_SCREENSHOT=1 writes the README's copy (docs/status-page.png) instead.
    /// </summary>
    private static string Screenshot => Environment.GetEnvironmentVariable("MESH_UPDATE_SCREENSHOT") == "1"
        ? Path.Combine(Checkout.Root, "docs", "status-page.png")
        : Path.Combine(AppContext.BaseDirectory, "status-page.png");

    [LabFact]
    public async Task T8e_the_status_page_in_chromium_shows_nodes_and_tasks_a_removed_task_within_2s_and_a_killed_daemon_as_down()
    {
        // The browser lives in the machine's namespace; the holder's API is its unix socket: a byte relay joins them.
        await using var relay = UnixRelay.Start("/run/mesh/lab/mesh-n1.sock");
        var (playwright, browser) = await Chromium.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 1000 } });
            var foreign = new List<string>();
            page.Request += (_, r) =>
            {
                if (!r.Url.StartsWith(relay.Url, StringComparison.Ordinal))
                {
                    foreign.Add(r.Url);
                }
            };
            await page.GotoAsync(relay.Url + "ui");

            // 3 nodes, all up; web's 3 tasks; every node's ingress reaches every web task.
            foreach (var node in new[] { "mesh-n1", "mesh-n2", "mesh-n3" })
            {
                await Expect(page, $"tr[data-node='{node}'][data-alive='up']", 15_000);
            }

            foreach (var task in AllTasks)
            {
                await Expect(page, $"tr[data-task='{task}'][data-state='running']", 5_000);
            }

            Assert.Equal(3, await page.Locator("tr[data-node]").CountAsync());
            Assert.Equal(3, await page.Locator("svg g[data-node]").CountAsync());
            Assert.Equal(9, await page.Locator("svg line[data-link]").CountAsync());
            Assert.Equal(1, await page.Locator("svg line[data-link='mesh-n3 web.2']").CountAsync());
            Assert.Equal("live", await page.Locator("#conn").TextContentAsync());

            // A task removed: gone from the page within 2 s of the CLI's answer.
            var web2 = (await LabStateAsync()).Tasks.Single(t => t.Name == "web.2");
            var rm = await Shell.MeshApiAsync("mesh-n1", "task", "rm", "web.2");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
            var clock = Stopwatch.StartNew();
            await page.Locator("tr[data-task='web.2']").WaitForAsync(new() { State = WaitForSelectorState.Detached, Timeout = 2_000 });
            Assert.Equal(0, await page.Locator("svg g[data-task='web.2']").CountAsync());
            var removedAfter = clock.Elapsed;

            // Back as it was (T3b's way: same addresses, namespace and resolv.conf), and reached from every node again.
            string[] again = ["task", "add", "web.2", "--service", "web", "--node", web2.Node, "--netns", web2.NetnsPath!,
                .. web2.Addresses.SelectMany(a => new[] { "--ip", $"{a.Key}={a.Value}" }), .. web2.ResolvConfPath is { } rc ? ["--resolv-conf", rc] : Array.Empty<string>()];
            var add = await Shell.MeshApiAsync("mesh-n1", again);
            Assert.True(add.ExitCode == 0, add.Stderr);
            await Expect(page, "tr[data-task='web.2'][data-state='running']", 2_000);
            foreach (var node in LabFixture.NodeAddresses)
            {
                await EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync(node, 12)).Distinct().Order()));
            }

            // mesh-n3's daemon SIGKILLed: down on the page (its watch on the holder broke), then restarted as the lab does.
            var pids = (await Shell.CheckedAsync("ip", "netns", "pids", "mesh-n3")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(pids);
            await Shell.CheckedAsync("kill", "-KILL", pids[0]);
            clock.Restart();
            await Expect(page, "tr[data-node='mesh-n3'][data-alive='down']", 5_000);
            await Expect(page, "svg g[data-node='mesh-n3'][data-alive='down']", 1_000);
            var downAfter = clock.Elapsed;

            var up = await Shell.MeshAsync(lab.UpArguments);
            Assert.True(up.ExitCode == 0, up.Stderr);
            await Expect(page, "tr[data-node='mesh-n3'][data-alive='up']", 15_000);
            Assert.Equal(3, await page.Locator("tr[data-node][data-alive='up']").CountAsync());

            await page.ScreenshotAsync(new() { Path = Screenshot, FullPage = true });
            Assert.Empty(foreign);
            Console.WriteLine($"status page: web.2 gone {removedAfter.TotalMilliseconds:F0} ms after 'task rm', mesh-n3 down {downAfter.TotalMilliseconds:F0} ms after SIGKILL");
        }
    }

    private static async Task Expect(IPage page, string selector, int timeoutMs)
    {
        try
        {
            await page.Locator(selector).WaitForAsync(new() { Timeout = timeoutMs });
        }
        catch (TimeoutException)
        {
            var shown = await page.Locator("main").InnerTextAsync();
            Assert.Fail($"the status page did not show {selector} within {timeoutMs} ms; it shows:\n{shown}");
        }
    }

    /// <summary>The checkout this test runs from (the screenshot is committed beside the README).</summary>

    /// <summary>Loopback TCP to a unix socket, byte for byte (what <c>socat</c> would do), for a browser that speaks only TCP.</summary>
    private sealed class UnixRelay : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly string _socket;
        private Task _accepting = Task.CompletedTask;

        private UnixRelay(string socket) => _socket = socket;

        public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/";

        public static UnixRelay Start(string socket)
        {
            var relay = new UnixRelay(socket);
            relay._listener.Start();
            relay._accepting = relay.AcceptAsync();
            return relay;
        }

        private async Task AcceptAsync()
        {
            var connections = new List<Task>();
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    connections.Add(PipeAsync(client));
                }
            }
            catch (OperationCanceledException)
            {
                await Task.WhenAll(connections);
            }
        }

        private async Task PipeAsync(TcpClient client)
        {
            using (client)
            using (var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                try
                {
                    await unix.ConnectAsync(new UnixDomainSocketEndPoint(_socket), _stop.Token);
                    await using var server = new NetworkStream(unix, ownsSocket: false);
                    var browser = client.GetStream();
                    await Task.WhenAny(browser.CopyToAsync(server, _stop.Token), server.CopyToAsync(browser, _stop.Token));
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
                {
                    // one side closed: so does the other
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            _stop.Dispose();
        }
    }
}
