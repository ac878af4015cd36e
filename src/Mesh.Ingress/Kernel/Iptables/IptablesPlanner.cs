using System.Text;

namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>
/// Desired Mesh ruleset + what iptables-save shows → the minimal <c>iptables-restore --noflush</c> input,
/// or null when the kernel already matches. Only chains named MESH-* are ever declared (which flushes
/// them), deleted, or jumped to; built-in chains only gain or lose the jump rules Mesh owns.
/// </summary>
public static class IptablesPlanner
{
    public static string? Plan(IptablesRuleset desired, IptablesSave actual)
    {
        var tables = desired.Tables
            .Concat(actual.OwnedChains.Keys.Select(k => k.Table))
            .Concat(actual.Jumps.Select(j => j.Table))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal);

        var script = new StringBuilder();
        foreach (var table in tables)
        {
            var body = PlanTable(table, desired, actual);
            if (body.Length > 0)
            {
                script.Append('*').Append(table).Append('\n').Append(body).Append("COMMIT\n");
            }
        }

        return script.Length == 0 ? null : script.ToString();
    }

    private static StringBuilder PlanTable(string table, IptablesRuleset desired, IptablesSave actual)
    {
        var declare = new StringBuilder();
        var rules = new StringBuilder();
        var cleanup = new StringBuilder();

        var wantedChains = desired.Chains.Where(c => c.Table == table).ToList();
        foreach (var chain in wantedChains)
        {
            var have = actual.OwnedChains.GetValueOrDefault((table, chain.Name));
            if (have is not null && have.SequenceEqual(chain.Rules, StringComparer.Ordinal))
            {
                continue;
            }

            // Declaring an existing chain under --noflush flushes it: the refill is atomic with the flush.
            declare.Append(':').Append(chain.Name).Append(" - [0:0]\n");
            foreach (var rule in chain.Rules)
            {
                rules.Append("-A ").Append(chain.Name).Append(' ').Append(rule).Append('\n');
            }
        }

        var wantedJumps = desired.Jumps.Where(j => j.Table == table).ToList();
        var actualJumps = actual.Jumps.Where(j => j.Table == table).ToList();
        foreach (var jump in actualJumps.Distinct())
        {
            var present = actualJumps.Count(j => j == jump);
            var keep = wantedJumps.Contains(jump) ? 1 : 0;
            for (var i = keep; i < present; i++)
            {
                cleanup.Append("-D ").Append(jump.Chain).Append(' ').Append(jump.Rule).Append('\n');
            }
        }

        foreach (var jump in wantedJumps.Where(j => !actualJumps.Contains(j)))
        {
            rules.Append("-I ").Append(jump.Chain).Append(" 1 ").Append(jump.Rule).Append('\n');
        }

        var stale = actual.OwnedChains.Keys
            .Where(k => k.Table == table && !wantedChains.Any(c => c.Name == k.Chain))
            .Select(k => k.Chain)
            .Order(StringComparer.Ordinal)
            .ToList();
        foreach (var chain in stale)
        {
            declare.Append(':').Append(chain).Append(" - [0:0]\n");
        }

        var body = new StringBuilder().Append(declare).Append(cleanup).Append(rules);
        foreach (var chain in stale)
        {
            body.Append("-X ").Append(chain).Append('\n');
        }

        return body;
    }
}
