using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.HealthChecks;

/// <summary>
/// One probe of one task from the node's ingress sandbox: the socket is created inside the sandbox's namespace (as the
/// DNS listeners and the L7 entry's connections are), so it reaches the task over the same ingress overlay the node's
/// traffic takes, and the verdict is this node's view. A new connection each time: a task whose listener hangs fails.
/// </summary>
public sealed class HealthProbe(string sandboxNetnsPath)
{
    /// <summary>The most of an answer read to find its status line.</summary>
    private const int MaxStatusLine = 512;

    /// <summary>Null when healthy, else what failed (bounded, for the API and the log).</summary>
    public async Task<string?> RunAsync(IPAddress address, int port, HealthCheck check, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(check);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(check.TimeoutMs);
        using var socket = NetworkNamespaceSockets.CreateSocket(sandboxNetnsPath, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(address, port, timeout.Token).ConfigureAwait(false);
            if (check.Kind == HealthCheckKind.Tcp)
            {
                return null;
            }

            var request = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"GET {check.Path} HTTP/1.1\r\nHost: {address}:{port}\r\nUser-Agent: mesh-health\r\nConnection: close\r\n\r\n"));
            await socket.SendAsync(request, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var status = await ReadStatusAsync(socket, timeout.Token).ConfigureAwait(false);
            return status is >= 200 and <= 299 ? null : string.Create(CultureInfo.InvariantCulture, $"GET {check.Path}: {status}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return string.Create(CultureInfo.InvariantCulture, $"no answer in {check.TimeoutMs} ms");
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode.ToString();
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }

    /// <summary>Reads up to the end of the status line and returns its code; a malformed or missing line is a <see cref="FormatException"/>.</summary>
    private static async Task<int> ReadStatusAsync(Socket socket, CancellationToken ct)
    {
        var buffer = new byte[MaxStatusLine];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, ct).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            length += read;
            if (Array.IndexOf(buffer, (byte)'\n', 0, length) >= 0)
            {
                break;
            }
        }

        return ParseStatus(buffer.AsSpan(0, length));
    }

    /// <summary>"HTTP/1.x NNN ..." → NNN.</summary>
    public static int ParseStatus(ReadOnlySpan<byte> answer)
    {
        var line = answer.IndexOf((byte)'\n') is var end and >= 0 ? answer[..end] : answer;
        if (line.Length >= 12 && line.StartsWith("HTTP/1."u8) && line[8] == (byte)' '
            && int.TryParse(line.Slice(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var status) && status is >= 100 and <= 599
            && (line.Length == 12 || line[12] is (byte)' ' or (byte)'\r'))
        {
            return status;
        }

        throw new FormatException(answer.Length == 0 ? "closed without an answer" : "not an HTTP/1.x answer");
    }
}
