namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>The parts of <c>iptables-save</c> output Mesh cares about: its own chains and every rule jumping into them.</summary>
public sealed class IptablesSave
{
    private readonly Dictionary<(string Table, string Chain), List<string>> _owned = [];
    private readonly List<IptablesJump> _jumps = [];
    private readonly Dictionary<string, IptablesSave> _views = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<(string Table, string Chain), List<string>> OwnedChains => _owned;

    public IReadOnlyList<IptablesJump> Jumps => _jumps;

    /// <summary>
    /// The part of this save in <paramref name="tables"/>: the same object each time for the same tables, so that a
    /// caller's view can be told apart from one taken of another save.
    /// </summary>
    public IptablesSave Only(IReadOnlyCollection<string> tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        var key = string.Join(',', tables);
        lock (_views)
        {
            if (!_views.TryGetValue(key, out var view))
            {
                view = new IptablesSave();
                foreach (var (chain, rules) in _owned.Where(c => tables.Contains(c.Key.Table)))
                {
                    view._owned[chain] = rules;
                }

                view._jumps.AddRange(_jumps.Where(j => tables.Contains(j.Table)));
                _views[key] = view;
            }

            return view;
        }
    }

    /// <summary>This save with <paramref name="tables"/> as <paramref name="part"/> shows them (after a write to those tables).</summary>
    public IptablesSave Replacing(IReadOnlyCollection<string> tables, IptablesSave part)
    {
        ArgumentNullException.ThrowIfNull(tables);
        ArgumentNullException.ThrowIfNull(part);
        var save = new IptablesSave();
        foreach (var (chain, rules) in _owned.Where(c => !tables.Contains(c.Key.Table)).Concat(part._owned.Where(c => tables.Contains(c.Key.Table))))
        {
            save._owned[chain] = rules;
        }

        save._jumps.AddRange(_jumps.Where(j => !tables.Contains(j.Table)).Concat(part._jumps.Where(j => tables.Contains(j.Table))));
        return save;
    }

    /// <summary>What iptables-save shows of Mesh's objects once <paramref name="ruleset"/> was applied.</summary>
    public static IptablesSave Of(IptablesRuleset ruleset)
    {
        var save = new IptablesSave();
        foreach (var chain in ruleset.Chains)
        {
            save._owned[(chain.Table, chain.Name)] = [.. chain.Rules];
        }

        save._jumps.AddRange(ruleset.Jumps);
        return save;
    }

    public static IptablesSave Parse(string text)
    {
        var save = new IptablesSave();
        string? table = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith('*'))
            {
                table = line[1..];
            }
            else if (table is null || line.Length == 0 || line[0] == '#' || line == "COMMIT")
            {
                continue;
            }
            else if (line.StartsWith(':'))
            {
                var name = line[1..].Split(' ')[0];
                if (name.StartsWith(IptablesRuleset.OwnedPrefix, StringComparison.Ordinal))
                {
                    save._owned.TryAdd((table, name), []);
                }
            }
            else if (line.StartsWith("-A ", StringComparison.Ordinal))
            {
                var space = line.IndexOf(' ', 3);
                var chain = space < 0 ? line[3..] : line[3..space];
                var rule = space < 0 ? "" : line[(space + 1)..];
                if (chain.StartsWith(IptablesRuleset.OwnedPrefix, StringComparison.Ordinal))
                {
                    save._owned.TryAdd((table, chain), []);
                    save._owned[(table, chain)].Add(rule);
                }
                else if (JumpTarget(rule)?.StartsWith(IptablesRuleset.OwnedPrefix, StringComparison.Ordinal) == true)
                {
                    save._jumps.Add(new IptablesJump(table, chain, rule));
                }
            }
        }

        return save;
    }

    private static string? JumpTarget(string rule)
    {
        var tokens = rule.Split(' ');
        for (var i = 0; i < tokens.Length - 1; i++)
        {
            if (tokens[i] is "-j" or "-g")
            {
                return tokens[i + 1];
            }
        }

        return null;
    }
}
