using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// One <c>proxy=v2</c> TCP port in the ingress sandbox: accepts the client (the node DNATed it here keeping its
/// source address), picks a backend round robin, connects from the sandbox, writes the PROXY v2 header (the client's
/// address and port, and the node's address and published port it connected to), then copies both ways until each
/// side has finished sending (a half-close is passed on as a shutdown of the other side's sending direction).
/// Closing the relay stops accepting; connections already made run to their end (drain).
/// </summary>
public sealed partial class TcpRelay : IPortRelay
{
    /// <summary>A backend that does not accept within this long is given up on, and the client is reset.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Copy buffer per direction, from the shared pool.</summary>
    public const int BufferSize = 64 * 1024;

    /// <summary>Bytes are reported to the meter at least this often per direction (and at the end).</summary>
    private const long ReportEvery = 1 << 20;

    private const string Protocol = "tcp";

    private readonly Socket _listener;
    private readonly SandboxSockets _sockets;
    private readonly IPAddress _nodeAddress;
    private readonly ProxyRelayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly BackendRotation _rotation;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private RelayPort _port;
    private int _open;

    private TcpRelay(RelayPort port, Socket listener, SandboxSockets sockets, IPAddress nodeAddress, ProxyRelayMetrics metrics, ILogger logger)
    {
        _port = port;
        _listener = listener;
        _sockets = sockets;
        _nodeAddress = nodeAddress;
        _metrics = metrics;
        _logger = logger;
        _rotation = new BackendRotation(port.Backends, port.Hashed);
        _accepting = AcceptAsync(_stop.Token);
    }

    /// <summary>Listens on the port in the sandbox (all addresses: the node DNATs to the gateway leg's).</summary>
    public static TcpRelay Open(RelayPort port, SandboxSockets sockets, IPAddress nodeAddress, ProxyRelayMetrics metrics, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(port);
        ArgumentNullException.ThrowIfNull(sockets);
        var listener = sockets.Listen(new IPEndPoint(IPAddress.Any, port.Published));
        return new TcpRelay(port, listener, sockets, nodeAddress, metrics, logger);
    }

    public RelayPort Port => Volatile.Read(ref _port);

    /// <summary>Connections made and not yet finished.</summary>
    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>A new backend list (or target) for new connections; open ones keep theirs.</summary>
    public void Update(RelayPort port)
    {
        Volatile.Write(ref _port, port);
        _rotation.Replace(port.Backends, port.Hashed);
    }

    private async Task AcceptAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || ct.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                // Per-connection failures (ECONNABORTED, EMFILE): keep listening, a little later.
                LogAcceptFailed(Port.Published, e.SocketErrorCode.ToString());
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(Socket client)
    {
        var port = Port;
        var backend = _rotation.Next((client.RemoteEndPoint as IPEndPoint)?.Address);
        if (backend is null)
        {
            // As the kernel mesh does with no task: the client is reset at once rather than left waiting.
            _metrics.Failed(port.Service, Protocol, "no_backend");
            Reset(client);
            return;
        }

        Socket? upstream = null;
        try
        {
            var source = (IPEndPoint)client.RemoteEndPoint!;
            upstream = _sockets.NewTcp();
            client.NoDelay = true;
            upstream.NoDelay = true;
            using (var timeout = new CancellationTokenSource(ConnectTimeout))
            {
                await upstream.ConnectAsync(backend, timeout.Token).ConfigureAwait(false);
            }

            // The header goes first, on its own: the receiver reads it before anything of the client's.
            var header = ProxyHeaderV2.ForConnection(ProxyTransport.Stream, source, new IPEndPoint(_nodeAddress, port.Published)).ToBytes();
            await upstream.SendAsync(header, SocketFlags.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            _metrics.Failed(port.Service, Protocol, "connect");
            LogConnectFailed(port.Published, backend.ToString(), e.Message);
            Reset(client);
            if (upstream is not null)
            {
                upstream.Dispose();
            }

            return;
        }

        var name = backend.ToString();
        Interlocked.Increment(ref _open);
        _metrics.Opened(port.Service, Protocol, name);
        var pair = new Pair(client, upstream);
        try
        {
            await Task.WhenAll(CopyAsync(pair, client, upstream, port.Service, toBackend: true), CopyAsync(pair, upstream, client, port.Service, toBackend: false)).ConfigureAwait(false);
        }
        finally
        {
            client.Dispose();
            upstream.Dispose();
            Interlocked.Decrement(ref _open);
            _metrics.Closed(port.Service, Protocol);
        }
    }

    /// <summary>
    /// Copies one direction until its sender finishes (then shuts down sending on the other side: a half-close) or
    /// fails (then resets both sockets, so the other direction ends too and each peer sees the failure).
    /// </summary>
    private async Task CopyAsync(Pair pair, Socket from, Socket to, string service, bool toBackend)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long unreported = 0;
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None).ConfigureAwait(false);
                unreported += n;
                if (unreported >= ReportEvery)
                {
                    _metrics.Copied(service, Protocol, toBackend, unreported);
                    unreported = 0;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            if (pair.Abort())
            {
                _metrics.Failed(service, Protocol, "reset");
            }
        }
        finally
        {
            _metrics.Copied(service, Protocol, toBackend, unreported);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Closes with RST (SO_LINGER 0), as a kernel path would answer a connection it cannot carry.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
            // already reset by the peer
        }

        socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>Both sockets of one relayed connection: the first failure resets both, once.</summary>
    private sealed class Pair(Socket client, Socket upstream)
    {
        private int _aborted;

        public bool Abort()
        {
            if (Interlocked.Exchange(ref _aborted, 1) != 0)
            {
                return false;
            }

            Reset(client);
            Reset(upstream);
            return true;
        }
    }
}
