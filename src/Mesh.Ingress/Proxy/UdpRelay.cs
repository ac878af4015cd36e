using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// One <c>proxy=v2</c> UDP port in the ingress sandbox. A flow is the client's address and port, as conntrack sees
/// it: its first datagram picks a backend round robin and gets a socket of its own in the sandbox connected to it;
/// every datagram of the flow is sent there with a PROXY v2 header in front (the spec's UDP form: the header, with
/// transport DGRAM, prefixed to each datagram, since no datagram can be relied on to arrive first); what the
/// backend answers goes back to the client unchanged from the published port. A flow idle for
/// <see cref="IdleTimeout"/> is forgotten (a removed backend's flows drain that way); at most
/// <see cref="MaxFlows"/> flows are kept, datagrams of new flows beyond that are dropped and counted.
/// </summary>
public sealed partial class UdpRelay : IPortRelay
{
    /// <summary>conntrack's timeout for a UDP flow that has seen replies (nf_conntrack_udp_timeout_stream is 120 s; 30 s unreplied).</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);

    public const int MaxFlows = 4096;

    /// <summary>The largest UDP payload over IPv4.</summary>
    private const int MaxDatagram = 65507;

    private const string Protocol = "udp";

    private readonly Socket _socket;
    private readonly SandboxSockets _sockets;
    private readonly IPAddress _nodeAddress;
    private readonly ProxyRelayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly BackendRotation _rotation;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<IPEndPoint, Flow> _flows = [];
    private readonly Lock _flowsLock = new();
    private readonly Task _receiving;
    private RelayPort _port;

    private UdpRelay(RelayPort port, Socket socket, SandboxSockets sockets, IPAddress nodeAddress, ProxyRelayMetrics metrics, ILogger logger)
    {
        _port = port;
        _socket = socket;
        _sockets = sockets;
        _nodeAddress = nodeAddress;
        _metrics = metrics;
        _logger = logger;
        _rotation = new BackendRotation(port.Backends, port.Hashed);
        _receiving = ReceiveAsync(_stop.Token);
    }

    public static UdpRelay Open(RelayPort port, SandboxSockets sockets, IPAddress nodeAddress, ProxyRelayMetrics metrics, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(port);
        ArgumentNullException.ThrowIfNull(sockets);
        var socket = sockets.BindUdp(new IPEndPoint(IPAddress.Any, port.Published));
        return new UdpRelay(port, socket, sockets, nodeAddress, metrics, logger);
    }

    public RelayPort Port => Volatile.Read(ref _port);

    public int OpenFlows
    {
        get
        {
            lock (_flowsLock)
            {
                return _flows.Count;
            }
        }
    }

    public void Update(RelayPort port)
    {
        Volatile.Write(ref _port, port);
        _rotation.Replace(port.Backends, port.Hashed);
    }

    private async Task ReceiveAsync(CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ProxyHeaderV2.FixedLength + 36 + MaxDatagram);
        try
        {
            var any = new IPEndPoint(IPAddress.Any, 0);
            while (!ct.IsCancellationRequested)
            {
                SocketReceiveFromResult received;
                try
                {
                    // Received after room for the longest header, so the header is written in front without a copy.
                    received = await _socket.ReceiveFromAsync(buffer.AsMemory(ProxyHeaderV2.FixedLength + 36, MaxDatagram), SocketFlags.None, any, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || ct.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException e)
                {
                    // ICMP errors of earlier sends surface here (ECONNREFUSED); the socket is still good.
                    LogReceiveFailed(Port.Published, e.SocketErrorCode.ToString());
                    continue;
                }

                await ForwardAsync((IPEndPoint)received.RemoteEndPoint, buffer, received.ReceivedBytes).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task ForwardAsync(IPEndPoint client, byte[] buffer, int length)
    {
        var port = Port;
        var flow = FlowFor(client, port);
        if (flow is null)
        {
            return;
        }

        var start = ProxyHeaderV2.FixedLength + 36 - flow.Header.Length;
        flow.Header.CopyTo(buffer, start);
        try
        {
            await flow.Upstream.SendAsync(buffer.AsMemory(start, flow.Header.Length + length), SocketFlags.None).ConfigureAwait(false);
            flow.Touch();
            _metrics.Copied(port.Service, Protocol, toBackend: true, length);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // A refused earlier datagram (ICMP port unreachable) or a flow just expired: this datagram is lost, as UDP may.
            _metrics.Failed(port.Service, Protocol, "send");
        }
    }

    /// <summary>The client's flow, made on its first datagram; null when none can be (no backend, too many flows).</summary>
    private Flow? FlowFor(IPEndPoint client, RelayPort port)
    {
        lock (_flowsLock)
        {
            if (_flows.TryGetValue(client, out var existing))
            {
                return existing;
            }

            if (_flows.Count >= MaxFlows)
            {
                _metrics.Failed(port.Service, Protocol, "flow_limit");
                return null;
            }
        }

        var backend = _rotation.Next(client.Address);
        if (backend is null)
        {
            _metrics.Failed(port.Service, Protocol, "no_backend");
            return null;
        }

        Socket upstream;
        try
        {
            upstream = _sockets.NewUdp();
            upstream.Connect(backend); // no packet: fixes the peer, so only the backend's answers are read
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            _metrics.Failed(port.Service, Protocol, "connect");
            LogFlowFailed(port.Published, backend.ToString(), e.Message);
            return null;
        }

        var header = ProxyHeaderV2.ForConnection(ProxyTransport.Datagram, client, new IPEndPoint(_nodeAddress, port.Published)).ToBytes();
        var flow = new Flow(client, upstream, header, port.Service);
        lock (_flowsLock)
        {
            _flows[client] = flow;
        }

        _metrics.Opened(port.Service, Protocol, backend.ToString());
        _ = AnswerAsync(flow);
        return flow;
    }

    /// <summary>Carries the backend's datagrams back to the client until the flow has been idle long enough.</summary>
    private async Task AnswerAsync(Flow flow)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxDatagram);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var idle = IdleTimeout - flow.Idle;
                if (idle <= TimeSpan.Zero)
                {
                    return;
                }

                int n;
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    timeout.CancelAfter(idle);
                    try
                    {
                        n = await flow.Upstream.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        continue; // idle so far: the loop checks again (the client may have sent meanwhile)
                    }
                    catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
                    {
                        _metrics.Failed(flow.Service, Protocol, "refused");
                        continue; // the backend's port is closed for now: the ICMP error is reported, the flow stays
                    }
                }

                flow.Touch();
                await _socket.SendToAsync(buffer.AsMemory(0, n), SocketFlags.None, flow.Client).ConfigureAwait(false);
                _metrics.Copied(flow.Service, Protocol, toBackend: false, n);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // the relay is closing, or the client cannot be answered: the flow ends
        }
        finally
        {
            lock (_flowsLock)
            {
                if (_flows.TryGetValue(flow.Client, out var current) && ReferenceEquals(current, flow))
                {
                    _flows.Remove(flow.Client);
                }
            }

            flow.Upstream.Dispose();
            _metrics.Closed(flow.Service, Protocol);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Stops receiving on the published port at once; flows end with it (UDP has nothing to drain).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await _receiving.ConfigureAwait(false);
        lock (_flowsLock)
        {
            foreach (var flow in _flows.Values)
            {
                flow.Upstream.Dispose();
            }
        }
    }

    private sealed class Flow(IPEndPoint client, Socket upstream, byte[] header, string service)
    {
        private long _last = Environment.TickCount64;

        public IPEndPoint Client { get; } = client;

        public Socket Upstream { get; } = upstream;

        public byte[] Header { get; } = header;

        public string Service { get; } = service;

        public TimeSpan Idle => TimeSpan.FromMilliseconds(Environment.TickCount64 - Volatile.Read(ref _last));

        public void Touch() => Volatile.Write(ref _last, Environment.TickCount64);
    }
}
