using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Security;
using Mesh.Discovery.Store;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Security;
using Mesh.Ingress.Tests.Security;
using Mesh.Ingress.Ui;
using Microsoft.AspNetCore.TestHost;

namespace Mesh.Ingress.Tests.Ui;

/// <summary>GET /ui and GET /ui/events: what they serve, that the API's authentication guards them, the live frames and the viewer limit.</summary>
public sealed class StatusPageTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly Credentials _files = new();

    public void Dispose() => _files.Dispose();

    private static async Task<(HttpResponseMessage Response, SseReader Events)> OpenEventsAsync(HttpClient http)
    {
        var response = await http.GetAsync(new Uri("ui/events", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (response, new SseReader(await response.Content.ReadAsStreamAsync()));
    }

    private static JsonElement Node(JsonElement snapshot, string name) =>
        snapshot.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("name").GetString() == name);

    private static string[] Tasks(JsonElement snapshot) =>
        snapshot.GetProperty("tasks").EnumerateArray().Select(t => t.GetProperty("name").GetString()!).ToArray();

    [Fact]
    public async Task Ui_is_one_html_page_with_inline_style_and_script_and_a_policy_allowing_only_those()
    {
        await using var host = await StatusPageHost.StartAsync();
        using var http = host.App.GetTestClient();
        using var response = await http.GetAsync(new Uri("/ui", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("utf-8", response.Content.Headers.ContentType.CharSet);
        var html = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);

        // Works offline: nothing fetched from anywhere (the SVG namespace is an identifier, not a fetch).
        Assert.DoesNotMatch("(src|href)\\s*=", html);
        Assert.DoesNotContain(System.Text.RegularExpressions.Regex.Matches(html, "https?://[^\"]*").Select(m => m.Value), url => url != "http://www.w3.org/2000/svg");
        // Text from the state never becomes markup: the script builds the DOM with textContent and setAttribute only.
        foreach (var sink in new[] { "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(" })
        {
            Assert.DoesNotContain(sink, html, StringComparison.Ordinal);
        }

        var policy = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", policy, StringComparison.Ordinal);
        Assert.Matches("script-src 'sha256-[A-Za-z0-9+/=]{44}';", policy);
        Assert.Contains("connect-src 'self'", policy, StringComparison.Ordinal);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
    }

    [Fact]
    public async Task Events_are_an_sse_stream_with_a_snapshot_at_once_and_another_on_every_change()
    {
        await using var host = await StatusPageHost.StartAsync();
        using var http = host.App.GetTestClient();
        var (response, events) = await OpenEventsAsync(http);
        using (response)
        using (events)
        {
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
            var first = await events.NextSnapshotAsync(Patience);
            Assert.Equal("mesh-n1", first.GetProperty("servedBy").GetString());
            var self = Node(first, "mesh-n1");
            Assert.Equal("up", self.GetProperty("alive").GetString());
            Assert.Equal("nftables", self.GetProperty("dataplane").GetString());
            Assert.Equal(first.GetProperty("revision").GetInt64(), self.GetProperty("appliedRevision").GetInt64());
            Assert.Equal(["8080:80/tcp"], first.GetProperty("services")[0].GetProperty("ports").EnumerateArray().Select(p => p.GetString()));
            Assert.Empty(Tasks(first));

            var clock = Stopwatch.StartNew();
            await host.Store.AddTaskAsync(new TaskSpec { Name = "web.1", Service = "web", Node = "mesh-n1" });
            var added = await events.NextSnapshotAsync(s => Tasks(s).Contains("web.1"), Patience);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"the change reached the stream after {clock.Elapsed}");
            Assert.True(added.GetProperty("tasks")[0].GetProperty("addresses").TryGetProperty("ingress", out _));
            var link = Assert.Single(added.GetProperty("links").EnumerateArray());
            Assert.Equal(("mesh-n1", "web.1"), (link.GetProperty("node").GetString(), link.GetProperty("task").GetString()));

            // This daemon's own error (free text, unlike names) goes out as a JSON string, whatever it holds.
            host.Status.LastError = "<b id=\"x\">\"quoted\"\n";
            var failing = await events.NextSnapshotAsync(s => Node(s, "mesh-n1").GetProperty("lastError").ValueKind == JsonValueKind.String, Patience);
            Assert.Equal(host.Status.LastError, Node(failing, "mesh-n1").GetProperty("lastError").GetString());

            await host.Store.RemoveTaskAsync("web.1");
            var removed = await events.NextSnapshotAsync(s => !Tasks(s).Contains("web.1"), Patience);
            Assert.Empty(removed.GetProperty("links").EnumerateArray());
            Assert.All(events.Lines.Where(l => l.Length > 0), l => Assert.True(l.StartsWith("data: ", StringComparison.Ordinal) || l.StartsWith("retry: ", StringComparison.Ordinal), l));
        }
    }

    [Fact]
    public async Task A_quiet_stream_gets_heartbeat_comments()
    {
        await using var host = await StatusPageHost.StartAsync(new StatusPageOptions { Heartbeat = TimeSpan.FromMilliseconds(300), Recheck = TimeSpan.FromMilliseconds(100) });
        using var http = host.App.GetTestClient();
        var (response, events) = await OpenEventsAsync(http);
        using (response)
        using (events)
        {
            await events.NextSnapshotAsync(Patience);
            await host.Store.AddTaskAsync(new TaskSpec { Name = "web.1", Service = "web", Node = "mesh-n1" });
            Assert.Contains("web.1", Tasks(await events.NextSnapshotAsync(Patience)));

            // Nothing changes from here: only heartbeats, one per quiet period (the rechecks in between send nothing).
            var lines = new List<string>();
            while (lines.Count(l => l == ": heartbeat") < 2)
            {
                lines.Add(await events.NextLineAsync(Patience));
            }

            Assert.DoesNotContain(lines, l => l.StartsWith("data: ", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Live_viewers_are_limited_with_a_clear_503_and_a_closed_one_frees_its_slot()
    {
        await using var host = await StatusPageHost.StartAsync(new StatusPageOptions { MaxClients = 2 });
        using var http = host.App.GetTestClient();
        var (first, firstEvents) = await OpenEventsAsync(http);
        var (second, secondEvents) = await OpenEventsAsync(http);
        using (second)
        using (secondEvents)
        {
            await firstEvents.NextSnapshotAsync(Patience);
            await secondEvents.NextSnapshotAsync(Patience);

            using (var third = await http.GetAsync(new Uri("ui/events", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, third.StatusCode);
                var error = JsonDocument.Parse(await third.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();
                Assert.Equal("the status page serves at most 2 live viewers at once and all are taken: close one, or retry later", error);
                Assert.NotNull(third.Headers.RetryAfter);
            }

            // The page itself is not a live viewer.
            using (var page = await http.GetAsync(new Uri("ui", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            }

            firstEvents.Dispose();
            first.Dispose();
            HttpResponseMessage? again = null;
            for (var attempt = 0; attempt < 100 && again?.StatusCode != HttpStatusCode.OK; attempt++)
            {
                again?.Dispose();
                await Task.Delay(50);
                again = await http.GetAsync(new Uri("ui/events", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead);
            }

            using (again)
            {
                Assert.Equal(HttpStatusCode.OK, again!.StatusCode);
            }
        }
    }

    [Fact]
    public async Task Ui_and_events_take_the_apis_authentication_a_token_on_tcp_and_the_socket_file_on_unix()
    {
        var security = ApiSecurity.Load(new ApiSecurityFiles { TokenFile = _files.TokenFile }, hasTcpApi: true);
        await using var host = await StatusPageHost.StartAsync(security: security, socketDirectory: _files.Directory);
        using var anonymous = new HttpClient { BaseAddress = host.Http };
        foreach (var path in new[] { "ui", "ui/events" })
        {
            using var refused = await anonymous.GetAsync(new Uri(path, UriKind.Relative), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.DoesNotContain("Mesh status", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using var authorized = new HttpClient { BaseAddress = host.Http };
        authorized.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _files.Token);
        using (var page = await authorized.GetAsync(new Uri("ui", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("<title>Mesh status</title>", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var (response, events) = await OpenEventsAsync(authorized);
        using (response)
        using (events)
        {
            Assert.Equal("mesh-n1", (await events.NextSnapshotAsync(Patience)).GetProperty("servedBy").GetString());
        }

        using var unix = ApiClientFactory.Create("unix://" + host.Socket);
        using var viaSocket = await unix.GetAsync(new Uri("ui", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, viaSocket.StatusCode);
    }

    [Fact]
    public async Task A_joined_daemons_open_watch_shows_it_up_with_its_revision_and_its_dropped_connection_shows_it_down()
    {
        var security = ApiSecurity.Load(new ApiSecurityFiles { TlsCert = _files.Cert("mesh-n1"), TlsKey = _files.Key("mesh-n1"), TlsCa = _files.Ca }, hasTcpApi: true);
        await using var host = await StatusPageHost.StartAsync(security: security, socketDirectory: _files.Directory);
        await host.Store.RegisterNodeAsync(new NodeSpec { Name = "mesh-n2", AdvertiseAddress = "198.18.0.12" });
        using var viewer = ApiClientFactory.Create("unix://" + host.Socket);
        var (response, events) = await OpenEventsAsync(viewer);
        using (response)
        using (events)
        {
            Assert.Equal("unknown", Node(await events.NextSnapshotAsync(Patience), "mesh-n2").GetProperty("alive").GetString());

            // mesh-n2's daemon as it runs: a watch from the revision it applied, on its node certificate.
            var tls = ClientTls.Load("--tls-cert", _files.Cert("mesh-n2"), "--tls-key", _files.Key("mesh-n2"), "--tls-ca", _files.Ca);
            var joined = ApiClientFactory.CreateTcp(host.Https, new ApiClientCredentials(tls, null), TimeSpan.FromSeconds(90));
            var revision = (await host.Store.GetStateAsync()).Revision;
            using var stop = new CancellationTokenSource();
            var watch = new RemoteStore(joined).WatchAsync(revision, TimeSpan.FromSeconds(60), stop.Token);
            var up = await events.NextSnapshotAsync(s => Node(s, "mesh-n2").GetProperty("alive").GetString() == "up", Patience);
            Assert.Equal(revision, Node(up, "mesh-n2").GetProperty("appliedRevision").GetInt64());

            // Its process dies: the kernel closes its connection, the holder's request is aborted.
            var clock = Stopwatch.StartNew();
            await stop.CancelAsync();
            joined.Dispose();
            await Assert.ThrowsAnyAsync<Exception>(() => watch);
            await events.NextSnapshotAsync(s => Node(s, "mesh-n2").GetProperty("alive").GetString() == "down", Patience);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"seen down after {clock.Elapsed}");
        }
    }

    [Fact]
    public async Task In_a_real_browser_state_text_stays_text_and_nothing_is_fetched_from_elsewhere()
    {
        var security = ApiSecurity.Load(new ApiSecurityFiles { Insecure = true }, hasTcpApi: true);
        await using var host = await StatusPageHost.StartAsync(security: security, socketDirectory: _files.Directory);
        const string hostile = "<img src=x onerror=\"document.title='pwned'\"><b id=\"pwned\">bold</b>";
        host.Status.LastError = hostile;
        await host.Store.AddTaskAsync(new TaskSpec { Name = "web.1", Service = "web", Node = "mesh-n1" });

        var (playwright, browser) = await Chromium.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync();
            var requests = new List<string>();
            page.Request += (_, r) => requests.Add(r.Url);
            await page.GotoAsync(host.Http + "ui");
            var error = page.Locator("tr[data-node='mesh-n1'] td.error");
            await error.WaitForAsync(new() { Timeout = 10_000 });
            Assert.Equal(hostile, await error.TextContentAsync());
            Assert.Equal(0, await page.Locator("#pwned").CountAsync());
            Assert.Equal(0, await page.Locator("img").CountAsync());
            Assert.Equal("Mesh status", await page.TitleAsync());
            Assert.Equal(1, await page.Locator("svg g[data-task='web.1']").CountAsync());
            Assert.Equal(1, await page.Locator("svg line[data-link='mesh-n1 web.1']").CountAsync());
            Assert.All(requests, url => Assert.StartsWith(host.Http.ToString(), url, StringComparison.Ordinal));
        }
    }
}
