using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Ingress.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Tests.Http;

/// <summary>
/// What the entry does per connection and per request, on its real listeners over loopback: the h2c sniffer
/// with bytes arriving late or in pieces, and no hosting activity for a request when the entry's
/// web host gets the daemon's loggers through <see cref="WithoutRequestLogging"/>.
/// </summary>
public sealed class EntryConnectionPathTests
{
    [Fact]
    public async Task A_request_sent_after_a_pause_and_a_preface_sent_in_pieces_are_both_served()
    {
        var port = FreePort();
        await using var app = await StartAsync(new LoggerFactory(), port);

        // HTTP/1.1 with nothing to read when the sniffer first looks: the waiting path.
        using var late = await ConnectAsync(port);
        await Task.Delay(300);
        await late.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n"u8.ToArray());
        var answer = await ReadToEndAsync(late);

        // HTTP/1.1 written at once: the first look decides.
        using var early = await ConnectAsync(port);
        await early.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n"u8.ToArray());
        var earlyAnswer = await ReadToEndAsync(early);

        // The HTTP/2 preface in two writes, then an empty SETTINGS frame: the server answers with its own SETTINGS.
        using var h2 = await ConnectAsync(port);
        var stream = h2.GetStream();
        await stream.WriteAsync("PRI * HTTP/2.0\r\n"u8.ToArray());
        await Task.Delay(300);
        byte[] rest = [.. "\r\nSM\r\n\r\n"u8.ToArray(), 0, 0, 0, 4, 0, 0, 0, 0, 0];
        await stream.WriteAsync(rest);
        var frame = new byte[9];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await stream.ReadExactlyAsync(frame, timeout.Token);

        Assert.StartsWith("HTTP/1.1 200 OK", answer, StringComparison.Ordinal);
        Assert.Contains("HTTP/1.1 activity:False", answer, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 OK", earlyAnswer, StringComparison.Ordinal);
        Assert.Equal(4, frame[3]); // frame type SETTINGS
    }

    [Fact]
    public async Task Requests_get_no_hosting_activity_through_WithoutRequestLogging_and_do_with_the_daemons_factory_itself()
    {
        // A factory whose loggers are enabled at every level, as the daemon's is for ASP.NET Core at Warning.
        using var daemon = LoggerFactory.Create(b => b.AddProvider(new EnabledProvider()).SetMinimumLevel(LogLevel.Warning));
        var (withWrapper, withDaemons) = (FreePort(), FreePort());
        await using var entry = await StartAsync(new WithoutRequestLogging(daemon), withWrapper);
        await using var plain = await StartAsync(daemon, withDaemons);
        using var client = new HttpClient();

        var wrapped = await client.GetStringAsync(new Uri($"http://127.0.0.1:{withWrapper}/"));
        var unwrapped = await client.GetStringAsync(new Uri($"http://127.0.0.1:{withDaemons}/"));

        Assert.Equal("HTTP/1.1 activity:False", wrapped);
        Assert.Equal("HTTP/1.1 activity:True", unwrapped);
    }

    private static async Task<WebApplication> StartAsync(ILoggerFactory loggers, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers);
        builder.WebHost.ConfigureKestrel(k => HttpEntry.Listen(k, new HttpEntryOptions { Port = port }, null));
        var app = builder.Build();
        app.Run(ctx => ctx.Response.WriteAsync($"{ctx.Request.Protocol} activity:{Activity.Current is not null}"));
        await app.StartAsync();
        return app;
    }

    private static async Task<TcpClient> ConnectAsync(int port)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        return client;
    }

    private static async Task<string> ReadToEndAsync(TcpClient client)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
        return await reader.ReadToEndAsync(timeout.Token);
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private sealed class EnabledProvider : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Enabled();

        public void Dispose()
        {
        }

        private sealed class Enabled : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
            }
        }
    }
}
