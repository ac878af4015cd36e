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
    private readonly HttpListener _listener = new();
    private readonly Func<HttpListenerRequest, Task<string>> _answer;

    public JsonTestServer(Func<HttpListenerRequest, Task<string>> answer)
    {
        _answer = answer;
        Url = new Uri($"http://127.0.0.1:{EtcdProcess.FreePort()}/");
        _listener.Prefixes.Add(Url.ToString());
        _listener.Start();
        _ = ServeAsync();
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
