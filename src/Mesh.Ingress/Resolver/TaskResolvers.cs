using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Ingress.Dataplane;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Resolver;

/// <summary>
/// One embedded DNS server per local task, listening inside the task's namespace on 127.0.0.11 (a thread
/// enters the namespace to create the sockets, which stay bound there). A restarted daemon binds the same
/// ports the task's DNAT rules already point at, so the rules need not change.
/// </summary>
public sealed partial class TaskResolvers(
    ClusterDnsAuthority authority,
    IReadOnlyList<IPEndPoint> upstreams,
    ILoggerFactory loggers) : IAsyncDisposable
{
    private static readonly IPAddress Resolver = IPAddress.Parse(TaskRules.EmbeddedResolver);

    private readonly Dictionary<string, (EmbeddedDnsServer Server, DnsPorts Ports)> _running = new(StringComparer.Ordinal);
    private readonly ILogger _logger = loggers.CreateLogger<TaskResolvers>();

    /// <summary>Shared by every task's resolver: a dead upstream is one warning per 10 s for the node, not one per task per query.</summary>
    private readonly LogRateLimiter _upstreamFailureLog = new(TimeSpan.FromSeconds(10));

    public IReadOnlyList<IPEndPoint> Upstreams => upstreams;

    /// <summary>Every answer comes from this state from now on.</summary>
    public void Update(ClusterState state) => authority.Update(state);

    /// <summary>Starts the task's resolver if it isn't running; prefers <paramref name="previous"/> ports. Returns the listening ports.</summary>
    public DnsPorts Ensure(ServiceTask task, string netnsPath, DnsPorts? previous)
    {
        if (_running.TryGetValue(netnsPath, out var running))
        {
            return running.Ports;
        }

        var udp = Bind(netnsPath, previous?.Udp, SocketType.Dgram);
        Socket tcp;
        try
        {
            tcp = Bind(netnsPath, previous?.Tcp, SocketType.Stream);
        }
        catch
        {
            udp.Dispose();
            throw;
        }

        var server = new EmbeddedDnsServer(
            new EmbeddedDnsServerOptions
            {
                TaskId = task.Name,
                State = task,
                UdpSocket = udp,
                TcpListener = tcp,
                Upstreams = upstreams,
                OwnAddresses = OwnAddresses(task),
                UpstreamFailureLog = _upstreamFailureLog,
            },
            authority,
            loggers.CreateLogger<EmbeddedDnsServer>());
        server.Start();
        var ports = new DnsPorts(server.UdpEndPoint!.Port, server.TcpEndPoint!.Port);
        _running[netnsPath] = (server, ports);
        LogStarted(task.Name, netnsPath, ports.Udp, ports.Tcp, previous == ports);
        return ports;
    }

    public async Task StopAsync(string netnsPath)
    {
        if (_running.Remove(netnsPath, out var running))
        {
            await running.Server.DisposeAsync().ConfigureAwait(false);
            LogStopped(netnsPath);
        }
    }

    public IReadOnlyCollection<string> Namespaces => _running.Keys;

    public async ValueTask DisposeAsync()
    {
        foreach (var path in _running.Keys.ToList())
        {
            await StopAsync(path).ConfigureAwait(false);
        }
    }

    /// <summary>The task's IPs: an upstream at one of them would be the task's own namespace (see <see cref="DnsUpstreamGuard"/>).</summary>
    private static IPAddress[] OwnAddresses(ServiceTask task) =>
        task.Addresses.Values.Select(a => IPAddress.TryParse(a.Split('/')[0], out var ip) ? ip : null).OfType<IPAddress>().ToArray();

    private static Socket Bind(string netnsPath, int? preferred, SocketType type)
    {
        if (preferred is { } port)
        {
            try
            {
                return Create(netnsPath, port, type);
            }
            catch (SocketException)
            {
                // Taken since: fall back to a fresh port (the rules follow).
            }
        }

        return Create(netnsPath, 0, type);
    }

    private static Socket Create(string netnsPath, int port, SocketType type) => type == SocketType.Dgram
        ? NetworkNamespaceSockets.CreateUdp(netnsPath, new IPEndPoint(Resolver, port))
        : NetworkNamespaceSockets.CreateTcpListener(netnsPath, new IPEndPoint(Resolver, port));

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded DNS for task {Task} in {Netns} on udp {UdpPort} / tcp {TcpPort} (same ports as before: {Adopted})")]
    private partial void LogStarted(string task, string netns, int udpPort, int tcpPort, bool adopted);

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded DNS in {Netns} stopped")]
    private partial void LogStopped(string netns);
}
