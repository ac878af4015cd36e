using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Mesh.Ingress.Cli;

namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>Sends fuzzed requests to the daemon's unix socket: through the CLI's own HttpClient, or as raw bytes.</summary>
internal sealed class FuzzTransport(string socketPath) : IDisposable
{
    private static readonly UriCreationOptions Verbatim = new() { DangerousDisablePathAndQueryCanonicalization = true };

    private readonly HttpClient _http = ApiClientFactory.Create("unix://" + socketPath, TimeSpan.FromSeconds(70));

    public HttpClient Http => _http;

    public async Task<FuzzResponse> SendAsync(FuzzRequest request)
    {
        var started = Stopwatch.StartNew();
        return request.Raw is not null ? await SendRawAsync(request.Raw, started) : await SendHttpAsync(request, started);
    }

    private async Task<FuzzResponse> SendHttpAsync(FuzzRequest request, Stopwatch started)
    {
        // Verbatim: no dot-segment removal or re-escaping, so "/v1/tasks/../services" reaches the server as written.
        var uri = new Uri("http://mesh" + request.Path, Verbatim);
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), uri);
        if (request.Body is not null)
        {
            message.Content = new ByteArrayContent(request.Body);
            message.Content.Headers.ContentType = null;
            if (request.ContentType is not null)
            {
                message.Content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType);
            }
        }

        try
        {
            using var response = await _http.SendAsync(message);
            var body = await response.Content.ReadAsStringAsync();
            return new FuzzResponse((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, body, started.Elapsed);
        }
        catch (HttpRequestException e) when (request.Body is not null && ClosedWhileSending(e))
        {
            // The server answered (a malformed header gets Kestrel's 400) and closed before the body was all written;
            // HttpClient then reports the write, not the answer. Replay it raw, which reads the answer after the close.
            return await SendRawAsync(ToRaw(request), started);
        }
    }

    private static bool ClosedWhileSending(Exception e)
    {
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException { SocketErrorCode: SocketError.Shutdown or SocketError.ConnectionReset or SocketError.ConnectionAborted })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The request as HTTP/1.1 bytes, as the CLI's client would send it (header values verbatim, Latin-1).</summary>
    internal static byte[] ToRaw(FuzzRequest request)
    {
        var head = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"{request.Method} {request.Path} HTTP/1.1\r\nHost: mesh\r\nConnection: close\r\n");
        if (request.ContentType is not null)
        {
            head.Append(CultureInfo.InvariantCulture, $"Content-Type: {request.ContentType}\r\n");
        }

        var body = request.Body ?? [];
        head.Append(CultureInfo.InvariantCulture, $"Content-Length: {body.Length}\r\n\r\n");
        return [.. Encoding.Latin1.GetBytes(head.ToString()), .. body];
    }

    /// <summary>
    /// One connection per raw request (each asks the server to close after it): write it, read the answer to EOF.
    /// No half-close: Kestrel takes a client's FIN as the connection gone and drops the answer while the handler
    /// still runs, so a DELETE looked unanswered yet applied later (the fuzz run's first false alarm).
    /// A server that drops a malformed request without answering gives status 0. A failed write is not the end:
    /// the server may have answered and closed before reading the whole request, so the answer is still read.
    /// </summary>
    private async Task<FuzzResponse> SendRawAsync(byte[] raw, Stopwatch started)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token);
        var received = new MemoryStream();
        try
        {
            await socket.SendAsync(raw, SocketFlags.None, timeout.Token);
        }
        catch (SocketException)
        {
            // the server stopped reading (answered a malformed head and closed): its answer is still queued for us
        }

        try
        {
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException)
        {
            // reset by the server after a malformed request: judge what arrived
        }

        return ParseRaw(received.ToArray(), started.Elapsed);
    }

    internal static FuzzResponse ParseRaw(byte[] bytes, TimeSpan elapsed)
    {
        var text = Encoding.Latin1.GetString(bytes);
        var headerEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (!text.StartsWith("HTTP/1.", StringComparison.Ordinal) || headerEnd < 0
            || !int.TryParse(text.AsSpan(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var status))
        {
            return new FuzzResponse(0, null, text, elapsed);
        }

        var headers = text[..headerEnd].Split("\r\n").Skip(1)
            .Select(h => h.Split(':', 2)).Where(h => h.Length == 2)
            .GroupBy(h => h[0].Trim(), StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.First()[1].Trim(), StringComparer.OrdinalIgnoreCase);
        var rest = bytes.AsSpan(headerEnd + 4);
        var body = headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase)
            ? Dechunk(rest)
            : headers.TryGetValue("Content-Length", out var cl) && int.TryParse(cl, CultureInfo.InvariantCulture, out var length)
                ? rest[..Math.Min(length, rest.Length)].ToArray()
                : rest.ToArray(); // HTTP/1.0 style: the body runs to the close
        var contentType = headers.TryGetValue("Content-Type", out var ct) && MediaTypeHeaderValue.TryParse(ct, out var parsed) ? parsed.MediaType : null;
        return new FuzzResponse(status, contentType, Encoding.UTF8.GetString(body), elapsed);
    }

    private static byte[] Dechunk(ReadOnlySpan<byte> data)
    {
        var body = new MemoryStream();
        while (true)
        {
            var lineEnd = data.IndexOf("\r\n"u8);
            if (lineEnd < 0 || !int.TryParse(Encoding.Latin1.GetString(data[..lineEnd]).Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var size) || size == 0)
            {
                return body.ToArray();
            }

            data = data[(lineEnd + 2)..];
            var take = Math.Min(size, data.Length);
            body.Write(data[..take]);
            data = data[Math.Min(take + 2, data.Length)..];
        }
    }

    public void Dispose() => _http.Dispose();
}
