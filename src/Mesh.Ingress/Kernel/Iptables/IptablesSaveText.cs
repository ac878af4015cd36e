using System.Text;

namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>
/// A ruleset in iptables-save's format: what <c>mesh trace</c> walks. On the nftables dataplane Mesh's host and task rules
/// live in nf_tables, and once the kernel is shown to hold exactly them (their chains' content hashes) the trace walks
/// their iptables equivalent instead of a second, nft-specific walker.
/// </summary>
public static class IptablesSaveText
{
    /// <param name="policies">Built-in chains' policies to show (e.g. <c>("filter", "FORWARD", "ACCEPT")</c>).</param>
    public static string Render(IptablesRuleset ruleset, IEnumerable<(string Table, string Chain, string Policy)>? policies = null)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        var shown = policies?.ToList() ?? [];
        var text = new StringBuilder();
        foreach (var table in ruleset.Tables.Concat(shown.Select(p => p.Table)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            text.Append('*').Append(table).Append('\n');
            foreach (var (_, chain, policy) in shown.Where(p => p.Table == table))
            {
                text.Append(':').Append(chain).Append(' ').Append(policy).Append(" [0:0]\n");
            }

            foreach (var chain in ruleset.Chains.Where(c => c.Table == table))
            {
                text.Append(':').Append(chain.Name).Append(" - [0:0]\n");
            }

            foreach (var jump in ruleset.Jumps.Where(j => j.Table == table))
            {
                text.Append("-A ").Append(jump.Chain).Append(' ').Append(jump.Rule).Append('\n');
            }

            foreach (var chain in ruleset.Chains.Where(c => c.Table == table))
            {
                foreach (var rule in chain.Rules)
                {
                    text.Append("-A ").Append(chain.Name).Append(' ').Append(rule).Append('\n');
                }
            }

            text.Append("COMMIT\n");
        }

        return text.ToString();
    }

    /// <summary>
    /// The part of a whole <c>iptables-save</c> text (every table the namespace has, comments and all) that is
    /// <paramref name="table"/>'s: its <c>*table</c> line through its <c>COMMIT</c>, or "" when the namespace has no such
    /// table. One save without <c>-t</c> instead of one per table: <c>-t</c> instantiates a table the namespace lacks.
    /// </summary>
    public static string Section(string save, string table)
    {
        ArgumentNullException.ThrowIfNull(save);
        var text = new StringBuilder();
        var inside = false;
        foreach (var line in save.Split('\n'))
        {
            if (line.Length > 1 && line[0] == '*')
            {
                inside = line.AsSpan(1).TrimEnd().SequenceEqual(table);
            }

            if (inside)
            {
                text.Append(line).Append('\n');
                inside = line.TrimEnd() != "COMMIT";
            }
        }

        return text.ToString();
    }

    /// <summary>Only the chains and jumps of <paramref name="table"/>.</summary>
    public static IptablesRuleset Only(IptablesRuleset ruleset, string table)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        return new IptablesRuleset([.. ruleset.Chains.Where(c => c.Table == table)], [.. ruleset.Jumps.Where(j => j.Table == table)]);
    }
}
