using System.Text.Json;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>What <c>nft -j list table</c> shows of a Mesh table: its chains and the comments of their rules.</summary>
public sealed class NftTableState
{
    public bool Exists { get; private init; }

    /// <summary>Chain name → the comments on its rules, in order (Mesh tags every rule with a content hash).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Chains { get; private init; } = new Dictionary<string, IReadOnlyList<string>>();

    public static NftTableState Missing { get; } = new();

    /// <summary>A table as it stands after a transaction: what the planner wrote, without asking the kernel.</summary>
    public static NftTableState Of(IReadOnlyDictionary<string, IReadOnlyList<string>> chains) => new() { Exists = true, Chains = chains };

    public static NftTableState Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var chains = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var item in document.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (item.TryGetProperty("chain", out var chain))
            {
                chains.TryAdd(chain.GetProperty("name").GetString()!, []);
            }
            else if (item.TryGetProperty("rule", out var rule))
            {
                var name = rule.GetProperty("chain").GetString()!;
                chains.TryAdd(name, []);
                chains[name].Add(rule.TryGetProperty("comment", out var c) ? c.GetString() ?? "" : "");
            }
        }

        return new NftTableState
        {
            Exists = true,
            Chains = chains.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value, StringComparer.Ordinal),
        };
    }
}
