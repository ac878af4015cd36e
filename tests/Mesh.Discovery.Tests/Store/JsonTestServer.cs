using System.Net;
using System.Text;
using Mesh.Discovery.Tests.Store.Etcd;

namespace Mesh.Discovery.Tests.Store;

/// <summary>
/// A real HTTP server on 127.0.0.1 standing in for the store's holder in the remote store's tests: every request is
/// answered, concurrently, with the JSON text the test's answer function returns for it.
/// </summary>
internal sealed class JsonTestServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<HttpListenerRequest, Task<string>> _answer;

    public JsonTestServer(Func<HttpListenerRequest, Task<string>> answer)
    {
        _answer = answer;
        (_listener, Url) = Listen();
        _ = ServeAsync();
    }

    /// <summary>
    /// A listener on a port that was free a moment ago: another test (they run in parallel) can take it between the
    /// look and the bind ("Address already in use", seen in a full run), so a taken port is given up for another.
    /// </summary>
    private static (HttpListener Listener, Uri Url) Listen()
    {
        for (var attempt = 1; ; attempt++)
        {
            var url = new Uri($"http://127.0.0.1:{EtcdProcess.FreePort()}/");
            var listener = new HttpListener();
            listener.Prefixes.Add(url.ToString());
            try
            {
                listener.Start();
                return (listener, url);
            }
            catch (HttpListenerException) when (attempt < 20)
            {
                listener.Close();
            }
        }
    }

    public Uri Url { get; }

    public void Dispose() => _listener.Close();

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            _ = AnswerAsync(ctx);
        }
    }

    private async Task AnswerAsync(HttpListenerContext ctx)
    {
        var body = Encoding.UTF8.GetBytes(await _answer(ctx.Request));
        try
        {
            ctx.Response.ContentType = "application/json";
            ctx.Response.StatusCode = 200;
            await ctx.Response.OutputStream.WriteAsync(body);
            ctx.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
        {
            // the test ended
        }
    }
}
