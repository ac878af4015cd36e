using Mesh.Ipvs.Codec;
using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs;

/// <summary>
/// A connection to the kernel's IPVS over generic netlink, in the caller's network namespace or in the one at a
/// given path (/var/run/netns/NAME, /proc/PID/ns/net). Methods are serialised by an internal lock.
/// Failures raise <see cref="NetlinkException"/> (Errno EEXIST, ENOENT, ESRCH, EINVAL, ...).
/// </summary>
public sealed class IpvsHandle : IDisposable
{
    private readonly NetlinkSocket _socket;
    private readonly NetlinkWriter _writer = new(512);
    private readonly Lock _lock = new();

    private IpvsHandle(NetlinkSocket socket, GenericNetlinkFamily family, string? netnsPath)
    {
        _socket = socket;
        Family = family;
        NetworkNamespacePath = netnsPath;
    }

    /// <summary>The resolved "IPVS" generic netlink family.</summary>
    public GenericNetlinkFamily Family { get; }

    /// <summary>The network namespace this handle programs (null: the opener's).</summary>
    public string? NetworkNamespacePath { get; }

    /// <summary>
    /// True when the "IPVS" generic netlink family resolves in that namespace (ip_vs loaded or built in).
    /// False, not an exception, when it does not; other failures (bad netns path, no permission) still throw.
    /// </summary>
    public static bool IsSupported(string? netnsPath = null)
    {
        using var socket = NetlinkSocket.Open(NetlinkConstants.NETLINK_GENERIC, netnsPath);
        return GenericNetlink.TryResolve(socket, IPVS_GENL_NAME) is not null;
    }

    /// <summary>Opens a handle; throws <see cref="IpvsNotSupportedException"/> when the kernel has no IPVS.</summary>
    public static IpvsHandle Open(string? netnsPath = null)
    {
        var socket = NetlinkSocket.Open(NetlinkConstants.NETLINK_GENERIC, netnsPath);
        try
        {
            var family = GenericNetlink.TryResolve(socket, IPVS_GENL_NAME) ?? throw new IpvsNotSupportedException(netnsPath);
            return new IpvsHandle(socket, family, netnsPath);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public IpvsInfo GetInfo()
    {
        var m = Single(IPVS_CMD_GET_INFO, (w, seq) => IpvsRequests.Simple(w, Family.Id, IPVS_CMD_GET_INFO, seq));
        return IpvsReplies.Info(m, "IPVS_CMD_GET_INFO");
    }

    public IReadOnlyList<IpvsService> GetServices()
    {
        const string op = "IPVS_CMD_GET_SERVICE (dump)";
        var msgs = Exchange(op, dump: true, (w, seq) => IpvsRequests.DumpServices(w, Family.Id, seq));
        var list = new List<IpvsService>(msgs.Count);
        foreach (var m in msgs) list.Add(IpvsReplies.Service(m, op));
        return list;
    }

    /// <summary>One service by key (address/port/protocol or fwmark); null when it does not exist.</summary>
    public IpvsService? GetService(IpvsService key)
    {
        try
        {
            var m = Single(IPVS_CMD_GET_SERVICE, (w, seq) => IpvsRequests.Service(w, Family.Id, IPVS_CMD_GET_SERVICE, seq, key));
            return IpvsReplies.Service(m, "IPVS_CMD_GET_SERVICE");
        }
        catch (NetlinkException e) when (e.Errno is Errno.ESRCH or Errno.ENOENT)
        {
            return null;
        }
    }

    /// <summary>Adds a service; EEXIST if it exists.</summary>
    public void NewService(IpvsService service) => Do(IPVS_CMD_NEW_SERVICE, (w, seq) => IpvsRequests.Service(w, Family.Id, IPVS_CMD_NEW_SERVICE, seq, service));

    /// <summary>Changes scheduler/flags/timeout/netmask of an existing service; ESRCH if missing.</summary>
    public void UpdateService(IpvsService service) => Do(IPVS_CMD_SET_SERVICE, (w, seq) => IpvsRequests.Service(w, Family.Id, IPVS_CMD_SET_SERVICE, seq, service));

    /// <summary>Deletes a service and its destinations; ESRCH if missing.</summary>
    public void DeleteService(IpvsService service) => Do(IPVS_CMD_DEL_SERVICE, (w, seq) => IpvsRequests.Service(w, Family.Id, IPVS_CMD_DEL_SERVICE, seq, service));

    public IReadOnlyList<IpvsDestination> GetDestinations(IpvsService service)
    {
        const string op = "IPVS_CMD_GET_DEST (dump)";
        var msgs = Exchange(op, dump: true, (w, seq) => IpvsRequests.DumpDestinations(w, Family.Id, seq, service));
        var list = new List<IpvsDestination>(msgs.Count);
        foreach (var m in msgs) list.Add(IpvsReplies.Destination(m, service.AddressFamily, op));
        return list;
    }

    /// <summary>Adds a destination; EEXIST if present, ESRCH if the service is missing.</summary>
    public void NewDestination(IpvsService service, IpvsDestination destination) =>
        Do(IPVS_CMD_NEW_DEST, (w, seq) => IpvsRequests.Destination(w, Family.Id, IPVS_CMD_NEW_DEST, seq, service, destination));

    /// <summary>Changes weight/forwarding/thresholds; ENOENT if the destination is missing.</summary>
    public void UpdateDestination(IpvsService service, IpvsDestination destination) =>
        Do(IPVS_CMD_SET_DEST, (w, seq) => IpvsRequests.Destination(w, Family.Id, IPVS_CMD_SET_DEST, seq, service, destination));

    /// <summary>Removes a destination; ENOENT if missing.</summary>
    public void DeleteDestination(IpvsService service, IpvsDestination destination) =>
        Do(IPVS_CMD_DEL_DEST, (w, seq) => IpvsRequests.Destination(w, Family.Id, IPVS_CMD_DEL_DEST, seq, service, destination));

    /// <summary>Removes every service (ipvsadm -C).</summary>
    public void Flush() => Do(IPVS_CMD_FLUSH, (w, seq) => IpvsRequests.Simple(w, Family.Id, IPVS_CMD_FLUSH, seq));

    /// <summary>Zeroes counters of one service, or of all when <paramref name="service"/> is null.</summary>
    public void Zero(IpvsService? service = null) => Do(IPVS_CMD_ZERO, (w, seq) =>
    {
        if (service is null) IpvsRequests.Simple(w, Family.Id, IPVS_CMD_ZERO, seq);
        else IpvsRequests.Zero(w, Family.Id, seq, service);
    });

    public IpvsTimeouts GetTimeouts()
    {
        var m = Single(IPVS_CMD_GET_CONFIG, (w, seq) => IpvsRequests.Simple(w, Family.Id, IPVS_CMD_GET_CONFIG, seq));
        return IpvsReplies.Timeouts(m, "IPVS_CMD_GET_CONFIG");
    }

    /// <summary>Sets timeouts; a 0 field leaves that timeout unchanged.</summary>
    public void SetTimeouts(IpvsTimeouts timeouts) => Do(IPVS_CMD_SET_CONFIG, (w, seq) => IpvsRequests.SetTimeouts(w, Family.Id, seq, timeouts));

    /// <summary>
    /// Sends every operation of <paramref name="batch"/> (packed into datagrams of up to 32 KiB, one ACK at the
    /// end). All operations are attempted; if any failed, throws <see cref="NetlinkBatchException"/> listing them.
    /// </summary>
    public void Apply(IpvsBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) return;
        lock (_lock)
        {
            var failures = new List<NetlinkBatchFailure>();
            var w = new NetlinkWriter(Math.Min(batch.Count, OperationsPerRound) * 160);
            for (int start = 0; start < batch.Count; start += OperationsPerRound)
            {
                int count = Math.Min(OperationsPerRound, batch.Count - start);
                w.Clear();
                uint first = _socket.NextSequence();
                for (int i = 1; i < count; i++) _socket.NextSequence();
                var offsets = batch.Encode(w, Family.Id, first, start, count);
                foreach (var (k, err) in _socket.SendBatch(w.WrittenSpan, offsets, first, "IPVS batch"))
                {
                    var op = batch.Operations[start + k];
                    string what = IpvsBatch.Describe(op);
                    failures.Add(new NetlinkBatchFailure(start + k, what, new NetlinkException(what, err.Errno, err.Message)));
                }
            }
            if (failures.Count > 0) throw new NetlinkBatchException(batch.Count, failures);
        }
    }

    /// <summary>
    /// Operations sent before waiting for the closing ACK. Bounds the burst of error replies the kernel can queue
    /// (one per failed operation) well below the socket's receive buffer, so none are lost even if all fail.
    /// </summary>
    public const int OperationsPerRound = 1024;

    private void Do(byte cmd, Action<NetlinkWriter, uint> build) => Exchange(CommandName(cmd), dump: false, build);

    private NetlinkMessage Single(byte cmd, Action<NetlinkWriter, uint> build)
    {
        string op = CommandName(cmd);
        var msgs = Exchange(op, dump: false, build);
        if (msgs.Count == 0) throw new NetlinkProtocolException(op, "no reply before the ACK");
        return msgs[0];
    }

    private List<NetlinkMessage> Exchange(string operation, bool dump, Action<NetlinkWriter, uint> build)
    {
        lock (_lock)
        {
            _writer.Clear();
            uint seq = _socket.NextSequence();
            build(_writer, seq);
            return _socket.Request(_writer.WrittenSpan, seq, dump, operation);
        }
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>The kernel has no "IPVS" generic netlink family (CONFIG_IP_VS not set or ip_vs not loaded).</summary>
public sealed class IpvsNotSupportedException : NetlinkException
{
    public IpvsNotSupportedException(string? netnsPath)
        : base("CTRL_CMD_GETFAMILY(IPVS)", Netlink.Errno.ENOENT,
            "the kernel has no IPVS generic netlink family (CONFIG_IP_VS not set or ip_vs module not loaded)" +
            (netnsPath is null ? "" : $" in network namespace {netnsPath}"))
    {
    }
}
