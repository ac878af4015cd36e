using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Mesh.Ingress.Http;

/// <summary>
/// HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) beside HTTP/1.1 on one cleartext port. Kestrel chooses HTTP/2 on
/// an Http1AndHttp2 endpoint only by TLS ALPN: without TLS it turns the endpoint into HTTP/1.1 only when it binds
/// (warning 64, "HTTP/2 is not enabled ... TLS is not enabled"; dotnet/aspnetcore#56984, open) and an HTTP/2
/// preface gets "Unrecognized HTTP version". An Http2-only endpoint does speak prior knowledge. So the entry's port is
/// an HTTP/1.1 endpoint whose connection middleware looks at the first bytes without consuming them, and hands a
/// connection that starts with the 24-byte HTTP/2 client preface to the HTTP/2 pipeline of a second, Http2-only
/// endpoint (<see cref="Capture"/>: on loopback, port 0, which itself refuses every connection). Anything else goes
/// on to HTTP/1.1 untouched. An HTTP/1.1 request differs from the preface ("PRI * HTTP/2.0...") by its first or
/// second byte, so waiting for more bytes only happens for a client that is sending the preface.
/// </summary>
public sealed class H2cPriorKnowledge
{
    private ConnectionDelegate? _http2;

    /// <summary>The middleware of the Http2-only endpoint: keeps its HTTP/2 pipeline, refuses its own connections.</summary>
    public ConnectionDelegate Capture(ConnectionDelegate http2)
    {
        _http2 = http2;
        return connection =>
        {
            connection.Abort(new ConnectionAbortedException("the h2c pipeline takes no connections of its own"));
            return Task.CompletedTask;
        };
    }

    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    /// <summary>How long a connection may take to send its first bytes; Kestrel's own timeouts start after this.</summary>
    public static readonly TimeSpan FirstBytesTimeout = TimeSpan.FromSeconds(30);

    public async Task SniffAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(next);
        var input = connection.Transport.Input;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        timeout.CancelAfter(FirstBytesTimeout);
        long examined = 0;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                connection.Abort(new ConnectionAbortedException("no request within " + FirstBytesTimeout.TotalSeconds + " s"));
                return;
            }

            var buffer = result.Buffer;
            var verdict = Compare(buffer);
            if (verdict is null && !result.IsCompleted)
            {
                // A prefix of the preface so far: wait for more bytes (examined to the end, consumed nothing).
                input.AdvanceTo(buffer.Start, buffer.End);
                examined = buffer.Length;
                continue;
            }

            // Nothing consumed; examined stays where it was (a pipe's examined position cannot go back), so the
            // bytes not yet looked at are handed to Kestrel's reader at once.
            input.AdvanceTo(buffer.Start, buffer.GetPosition(examined));
            if (verdict == true && _http2 is { } http2)
            {
                await http2(connection).ConfigureAwait(false);
                return;
            }

            break;
        }

        await next(connection).ConfigureAwait(false);
    }

    /// <summary>True: the preface; false: not it; null: a prefix of it so far.</summary>
    public static bool? Compare(ReadOnlySequence<byte> buffer)
    {
        var length = (int)Math.Min(buffer.Length, Preface.Length);
        Span<byte> head = stackalloc byte[Preface.Length];
        buffer.Slice(0, length).CopyTo(head);
        if (!head[..length].SequenceEqual(Preface.AsSpan(0, length)))
        {
            return false;
        }

        return length == Preface.Length ? true : null;
    }
}
