using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Cli;

/// <summary>
/// nf_tables tried over netlink, as the nftables dataplane writes it (no <c>nft</c>): one transaction that adds a table
/// with a nat base chain (nf_tables, nft_chain_nat) and deletes it again, so the ruleset is left as it was.
/// </summary>
public static class NfTablesProbe
{
    public const string Table = "mesh-doctor";

    public static DoctorCheck Check()
    {
        const string what = "nf_tables over netlink (a table with a nat chain added and deleted in one transaction)";
        const string fix = "a kernel with CONFIG_NF_TABLES and nf_tables' nat (modprobe nf_tables nft_chain_nat), and CAP_NET_ADMIN";
        try
        {
            using var handle = NfTablesHandle.Open();
            var batch = new NfTablesBatch()
                .AddTable(new Table(Family.Ip, Table))
                .AddChain(new Chain(Family.Ip, Table, "probe", new BaseChain("nat", Hook.Prerouting, BaseChain.PriorityDstNat)))
                .DeleteTable(Family.Ip, Table);
            handle.Commit(batch);
            return new DoctorCheck(what, true, DoctorNeed.Nftables);
        }
        catch (Exception e) when (e is NetlinkException or IOException or InvalidOperationException)
        {
            return new DoctorCheck(what, false, DoctorNeed.Nftables, e.Message, fix);
        }
    }
}
