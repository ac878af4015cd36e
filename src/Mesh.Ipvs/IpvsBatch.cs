using Mesh.Ipvs.Codec;
using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs;

/// <summary>
/// A list of service/destination changes sent to the kernel together by <see cref="IpvsHandle.Apply"/>:
/// many requests per datagram, no per-request ACK, one ACK at the end. The kernel applies them in order and
/// keeps going after a failure; failures come back as a <see cref="NetlinkBatchException"/> listing each one.
/// </summary>
public sealed class IpvsBatch
{
    internal readonly record struct Op(byte Command, IpvsService Service, IpvsDestination? Destination);

    private readonly List<Op> _ops = new();

    public int Count => _ops.Count;

    internal IReadOnlyList<Op> Operations => _ops;

    public IpvsBatch NewService(IpvsService s) => Add(IPVS_CMD_NEW_SERVICE, s, null);

    public IpvsBatch UpdateService(IpvsService s) => Add(IPVS_CMD_SET_SERVICE, s, null);

    public IpvsBatch DeleteService(IpvsService s) => Add(IPVS_CMD_DEL_SERVICE, s, null);

    public IpvsBatch NewDestination(IpvsService s, IpvsDestination d) => Add(IPVS_CMD_NEW_DEST, s, d);

    public IpvsBatch UpdateDestination(IpvsService s, IpvsDestination d) => Add(IPVS_CMD_SET_DEST, s, d);

    public IpvsBatch DeleteDestination(IpvsService s, IpvsDestination d) => Add(IPVS_CMD_DEL_DEST, s, d);

    public void Clear() => _ops.Clear();

    private IpvsBatch Add(byte cmd, IpvsService s, IpvsDestination? d)
    {
        ArgumentNullException.ThrowIfNull(s);
        s.Validate();
        if (cmd is IPVS_CMD_NEW_DEST or IPVS_CMD_SET_DEST or IPVS_CMD_DEL_DEST) ArgumentNullException.ThrowIfNull(d);
        _ops.Add(new Op(cmd, s, d));
        return this;
    }

    /// <summary>Encodes the batch: message i has sequence firstSeq+i, only the last one asks for an ACK.</summary>
    internal List<int> Encode(NetlinkWriter w, ushort family, uint firstSeq) => Encode(w, family, firstSeq, 0, _ops.Count);

    /// <summary>Encodes operations [start, start+count): message k has sequence firstSeq+k, only the last asks for an ACK.</summary>
    internal List<int> Encode(NetlinkWriter w, ushort family, uint firstSeq, int start, int count)
    {
        var offsets = new List<int>(count);
        for (int k = 0; k < count; k++)
        {
            var op = _ops[start + k];
            uint seq = unchecked(firstSeq + (uint)k);
            bool ack = k == count - 1;
            offsets.Add(w.Length);
            if (op.Destination is null) IpvsRequests.Service(w, family, op.Command, seq, op.Service, ack);
            else IpvsRequests.Destination(w, family, op.Command, seq, op.Service, op.Destination, ack);
        }
        return offsets;
    }

    internal static string Describe(Op op) => op.Destination is null
        ? $"{CommandName(op.Command)} {op.Service.Key}"
        : $"{CommandName(op.Command)} {op.Service.Key} -> {op.Destination.EndPoint}";
}
