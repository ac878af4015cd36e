using Mesh.Ipvs.Netlink;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>The nftables ruleset generation of a network namespace, or null when it cannot be read.</summary>
public interface INftGeneration
{
    uint? Read(NetworkNamespacePath netns);
}

/// <summary>
/// Reads the generation with one NFT_MSG_GETGEN over NETLINK_NETFILTER. The kernel bumps it on every committed
/// nf_tables transaction in the namespace, whoever commits (nft, iptables-nft), so an unchanged generation
/// proves an unchanged ruleset without listing it: at thousands of services a listing takes seconds, this
/// a fraction of a millisecond.
/// </summary>
public sealed class NetlinkNftGeneration : INftGeneration
{
    private const int NetlinkNetfilter = 12;
    private const int SubsystemNftables = 10;
    private const ushort GetGeneration = (SubsystemNftables << 8) | 16; // NFT_MSG_GETGEN
    private const ushort NewGeneration = (SubsystemNftables << 8) | 15; // NFT_MSG_NEWGEN
    private const ushort GenerationId = 1; // NFTA_GEN_ID, big-endian u32
    private const int NfgenmsgLength = 4;

    public uint? Read(NetworkNamespacePath netns)
    {
        try
        {
            using var socket = NetlinkSocket.Open(NetlinkNetfilter, netns.Path);
            var request = new NetlinkWriter(64);
            var seq = socket.NextSequence();
            request.BeginMessage(GetGeneration, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack, seq);
            request.PutGenlHeader(0, 0); // struct nfgenmsg { AF_UNSPEC, NFNETLINK_V0, res_id 0 }: genlmsghdr's size and layout
            request.EndMessage();
            foreach (var reply in socket.Request(request.WrittenSpan, seq, dump: false, "nft get generation"))
            {
                if (reply.Type == NewGeneration && reply.Payload.Length > NfgenmsgLength)
                {
                    return NetlinkAttributes.Parse(reply.Payload[NfgenmsgLength..], "nft get generation").GetBe32(GenerationId, "NFTA_GEN_ID");
                }
            }

            return null;
        }
        catch (Exception e) when (e is NetlinkException or IOException or InvalidOperationException)
        {
            return null; // no nf_tables, or the namespace is gone: the caller lists the table instead
        }
    }
}
