using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>
/// What a namespace's iptables hold, learned without starting a process. iptables-nft keeps its tables in nf_tables
/// (<c>ip nat</c>, <c>ip filter</c>), so their chains and built-in chains' policies are read over nf_tables netlink.
/// iptables-legacy's tables live in x_tables, which only name themselves (<c>/proc/net/ip_tables_names</c>, per namespace):
/// a legacy table that exists may hold anything, so the answers for it are "maybe" (true).
/// </summary>
/// <param name="LegacyTables">The x_tables tables instantiated in the namespace (iptables-legacy's).</param>
/// <param name="NftChains">The chains of iptables-nft's <c>ip nat</c> and <c>ip filter</c> tables.</param>
public sealed record IptablesPresence(IReadOnlySet<string> LegacyTables, IReadOnlyList<Chain> NftChains)
{
    public static IptablesPresence None { get; } = new(new HashSet<string>(), []);

    /// <summary>
    /// Whether packets forwarded by this namespace may be dropped by iptables' filter FORWARD, so that Mesh's accepts
    /// must stay there (an accept in Mesh's own nf_tables chain does not override another base chain's DROP: every base
    /// chain at a hook votes). True when iptables-nft's FORWARD has policy drop (Docker sets that), or when a legacy filter
    /// table exists (its policy is not readable without iptables-legacy-save).
    /// </summary>
    public bool ForwardMayDrop =>
        LegacyTables.Contains("filter")
        || NftChains.Any(c => c.Table == "filter" && c.Base is { Hook: Hook.Forward, Policy: ChainPolicy.Drop });

    /// <summary>Whether iptables-nft's <paramref name="table"/> holds Mesh chains (<c>MESH-*</c>): known exactly.</summary>
    public bool NftHoldsMeshChains(string table) =>
        NftChains.Any(c => c.Table == table && c.Name.StartsWith(IptablesRuleset.OwnedPrefix, StringComparison.Ordinal));

    /// <summary>Whether a legacy nat or filter table exists, which may hold Mesh chains (only iptables-legacy-save can tell).</summary>
    public bool LegacyMayHoldMeshChains => LegacyTables.Contains("nat") || LegacyTables.Contains("filter");

    /// <summary>iptables-nft's filter FORWARD policy, when its table exists.</summary>
    public string? NftForwardPolicy =>
        NftChains.FirstOrDefault(c => c.Table == "filter" && c.Base is { Hook: Hook.Forward })?.Base!.Policy == ChainPolicy.Drop ? "DROP"
        : NftChains.Any(c => c.Table == "filter" && c.Base is { Hook: Hook.Forward }) ? "ACCEPT" : null;

    /// <summary>
    /// The flavour to use on the nftables dataplane, chosen without running either tool: legacy when only x_tables has
    /// tables here, else nft (Debian's default). The tools are needed only to remove old rules or keep FORWARD accepts.
    /// </summary>
    public IptablesFlavour Flavour => LegacyTables.Count > 0 && NftChains.Count == 0 ? IptablesFlavour.Legacy : IptablesFlavour.Nft;

    /// <summary>Reads the namespace (<c>null</c>: this process's own) over netlink and /proc.</summary>
    public static IptablesPresence Read(string? netnsPath)
    {
        var legacy = netnsPath is null ? LegacyTablesHere() : NetworkNamespace.Run(netnsPath, LegacyTablesHere);
        var chains = new List<Chain>();
        try
        {
            using var handle = NfTablesHandle.Open(netnsPath);
            var tables = handle.GetTables(Family.Ip).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var table in new[] { "nat", "filter" }.Where(tables.Contains))
            {
                chains.AddRange(handle.GetChains(Family.Ip, table));
            }
        }
        catch (NetlinkException e) when (e.Errno is Errno.EAFNOSUPPORT or Errno.EPROTONOSUPPORT or Errno.EOPNOTSUPP)
        {
            // No nf_tables here: no iptables-nft either.
        }

        return new IptablesPresence(legacy, chains);
    }

    /// <summary>The x_tables IPv4 tables of the calling thread's namespace (thread-self: a thread may have entered another).</summary>
    private static HashSet<string> LegacyTablesHere()
    {
        const string names = "/proc/thread-self/net/ip_tables_names";
        try
        {
            return File.ReadAllLines(names).Select(l => l.Trim()).Where(l => l.Length > 0).ToHashSet(StringComparer.Ordinal);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return []; // ip_tables not loaded: no legacy table anywhere
        }
        catch (UnauthorizedAccessException)
        {
            // The file is root's alone (0440): a daemon run as another user (the API fuzz and metrics tests run one)
            // cannot read it, and could not run iptables-legacy either, so there is nothing of it to keep or remove.
            return [];
        }
    }
}
