using System.Globalization;
using System.Text.Json;

namespace Mesh.Ingress.Trace;

/// <summary>
/// A picking chain's DNAT (<see cref="Dataplane.IngressSandboxTable"/>: <c>dnat ip addr . port to meta l4proto . th dport
/// . numgen inc mod N map @backends</c>) for one published port, with that port's slots of the map as
/// <see cref="Targets"/>. <see cref="KeepsClientAddress"/>: the rule also sets
/// <see cref="Dataplane.IngressSandboxTable.LocalTrafficMark"/> (a <c>traffic=local</c> port: this node's tasks only, and
/// source-nat returns before it SNATs). <see cref="Mode"/> is numgen's (<c>inc</c>, <c>random</c>) or <c>jhash</c> for a
/// maglev rule (<c>jhash ip saddr mod M seed S</c>: <see cref="Seed"/>), whose map holds a Maglev table (the same task in
/// many buckets).
/// </summary>
public sealed record NftDnatRule(long Handle, string? Protocol, int? DestinationPort, string Mode, int Modulus, int Offset, IReadOnlyList<NftDnatTarget> Targets, bool KeepsClientAddress = false)
{
    public const string Jhash = "jhash";

    /// <summary>The jhash's seed (<see cref="Mode"/> <c>jhash</c> only).</summary>
    public uint Seed { get; init; }

    /// <summary>The map the rule looks the slot up in.</summary>
    public string Map { get; init; } = "";

    /// <summary>The rule as <c>nft list</c> prints it (rebuilt from the JSON listing), then this port's elements of its map.</summary>
    public string Text
    {
        get
        {
            var offset = Offset == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" offset {Offset}");
            var keep = KeepsClientAddress ? $"meta mark set meta mark | {Dataplane.IngressSandboxTable.LocalTrafficMark} " : "";
            var key = Mode == Jhash ? string.Create(CultureInfo.InvariantCulture, $"jhash ip saddr mod {Modulus} seed 0x{Seed:x8}") : string.Create(CultureInfo.InvariantCulture, $"numgen {Mode} mod {Modulus}{offset}");
            var elements = string.Join(", ", Targets.Select(t => string.Create(CultureInfo.InvariantCulture, $"{Protocol} . {DestinationPort} . {t.Index} : {t.Address}{(t.Port is { } p ? $" . {p}" : "")}")));
            return string.Create(CultureInfo.InvariantCulture, $"{keep}dnat ip addr . port to meta l4proto . th dport . {key} map @{Map}; @{Map} {{ {elements} }}");
        }
    }
}

public sealed record NftDnatTarget(int Index, string Address, int? Port);

/// <summary>
/// What a trace needs of the sandbox's <c>ip mesh</c> table, parsed from <c>nft -j list table ip mesh</c>: the
/// published-port → mark map, the (mark . protocol . port) → picking chain verdict map, whether the base chains use them,
/// the SNAT, each picking chain's DNAT and the slots of the maps they look up. Anything the parser does not recognise is
/// kept out (and the trace says so), never guessed.
/// </summary>
public sealed class NftSandboxView
{
    private readonly Dictionary<(string Protocol, int Port), long> _published = [];
    private readonly Dictionary<(long Mark, string Protocol, int Port), (string Verb, string Chain)> _dispatch = [];
    private readonly Dictionary<(string Map, string Protocol, int Port), List<NftDnatTarget>> _slots = [];
    private readonly Dictionary<string, List<JsonElement>> _rules = new(StringComparer.Ordinal);

    public bool MarksPublishedPorts { get; private set; }

    /// <summary>The dispatch chain looks (mark . protocol . port) up in @port-chains.</summary>
    public bool DispatchesByMark { get; private set; }

    /// <summary>The SNAT in <c>source-nat</c>: the address replies come back to, and the destination prefix it applies to.</summary>
    public (string Address, string? Prefix)? SourceNat { get; private set; }

    public long? MarkOf(string protocol, int port) => _published.TryGetValue((protocol, port), out var mark) ? mark : null;

    public (string Verb, string Chain)? ChainOf(long mark, string protocol, int port) => _dispatch.TryGetValue((mark, protocol, port), out var entry) ? entry : null;

    /// <summary>The chain's DNAT for one published port (its map's slots for that port as targets), and how many rules the chain has.</summary>
    public (NftDnatRule? Dnat, int Rules) PickChain(string chain, string protocol, int port)
    {
        if (!_rules.TryGetValue(chain, out var rules))
        {
            return (null, 0);
        }

        var rule = rules.Select(ParseDnat).OfType<NftDnatRule>().FirstOrDefault();
        return (rule is null ? null : rule with
        {
            Protocol = protocol,
            DestinationPort = port,
            Targets = (_slots.GetValueOrDefault((rule.Map, protocol, port)) ?? []).OrderBy(t => t.Index).ToArray(),
        }, rules.Count);
    }

    private static readonly long LocalTrafficMark = Convert.ToInt64(Dataplane.IngressSandboxTable.LocalTrafficMark, 16);

    public static string MarkText(long mark) => "0x" + mark.ToString("x8", CultureInfo.InvariantCulture);

    public static NftSandboxView Parse(string json)
    {
        var view = new NftSandboxView();
        using var document = JsonDocument.Parse(json);
        foreach (var item in document.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (item.TryGetProperty("map", out var map))
            {
                view.ReadMap(map);
            }
            else if (item.TryGetProperty("chain", out var chain) && chain.GetProperty("name").GetString() is { } name)
            {
                view._rules.TryAdd(name, []);
            }
            else if (item.TryGetProperty("rule", out var rule) && rule.GetProperty("chain").GetString() is { } owner)
            {
                view._rules.TryAdd(owner, []);
                view._rules[owner].Add(rule.Clone());
                view.ReadBaseRule(owner, rule);
            }
        }

        return view;
    }

    private void ReadMap(JsonElement map)
    {
        if (!map.TryGetProperty("elem", out var elements))
        {
            return;
        }

        var name = map.GetProperty("name").GetString() ?? "";
        foreach (var element in elements.EnumerateArray())
        {
            if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() != 2 || element[0].ValueKind != JsonValueKind.Object
                || !element[0].TryGetProperty("concat", out var concat))
            {
                continue;
            }

            var (key, value) = (element[0], element[1]);
            if (name == "published-ports" && concat.GetArrayLength() == 2
                && concat[0].GetString() is { } proto && concat[1].ValueKind == JsonValueKind.Number && Number(value) is { } mark)
            {
                _published[(proto, concat[1].GetInt32())] = mark;
            }
            else if (name == Dataplane.IngressSandboxTable.PortChainsMap && concat.GetArrayLength() == 3 && Number(concat[0]) is { } from
                && concat[1].ValueKind == JsonValueKind.String && concat[2].ValueKind == JsonValueKind.Number && value.ValueKind == JsonValueKind.Object)
            {
                foreach (var verb in new[] { "goto", "jump" })
                {
                    if (value.TryGetProperty(verb, out var target) && target.GetProperty("target").GetString() is { } chain)
                    {
                        _dispatch[(from, concat[1].GetString()!, concat[2].GetInt32())] = (verb, chain);
                    }
                }
            }
            else if (concat.GetArrayLength() == 3 && concat[0].ValueKind == JsonValueKind.String && concat[1].ValueKind == JsonValueKind.Number
                && concat[2].ValueKind == JsonValueKind.Number && value.TryGetProperty("concat", out var target2) && target2.GetArrayLength() == 2
                && target2[0].GetString() is { } address && target2[1].ValueKind == JsonValueKind.Number)
            {
                var slot = (name, concat[0].GetString()!, concat[1].GetInt32());
                if (!_slots.TryGetValue(slot, out var targets))
                {
                    _slots[slot] = targets = [];
                }

                targets.Add(new NftDnatTarget(concat[2].GetInt32(), address, target2[1].GetInt32()));
            }
        }
    }

    private void ReadBaseRule(string chain, JsonElement rule)
    {
        var text = rule.GetProperty("expr").GetRawText();
        if (chain == "mark-published" && text.Contains("\"@published-ports\"", StringComparison.Ordinal))
        {
            MarksPublishedPorts = true;
        }
        else if (chain == "dispatch" && text.Contains($"\"@{Dataplane.IngressSandboxTable.PortChainsMap}\"", StringComparison.Ordinal))
        {
            DispatchesByMark = true;
        }
        else if (chain == "source-nat")
        {
            string? prefix = null;
            foreach (var expr in rule.GetProperty("expr").EnumerateArray())
            {
                if (expr.TryGetProperty("match", out var match) && match.GetProperty("right") is { ValueKind: JsonValueKind.Object } right
                    && right.TryGetProperty("prefix", out var p))
                {
                    prefix = $"{p.GetProperty("addr").GetString()}/{p.GetProperty("len").GetInt32().ToString(CultureInfo.InvariantCulture)}";
                }
                else if (expr.TryGetProperty("snat", out var snat) && snat.TryGetProperty("addr", out var addr) && addr.ValueKind == JsonValueKind.String)
                {
                    SourceNat = (addr.GetString()!, prefix);
                }
            }
        }
    }

    /// <summary>A picking chain's rule: <c>[mangle mark |= local] dnat ip addr . port to meta l4proto . th dport . (numgen | jhash) map @m</c>.</summary>
    private static NftDnatRule? ParseDnat(JsonElement rule)
    {
        var keepsClient = false;
        foreach (var expr in rule.GetProperty("expr").EnumerateArray())
        {
            if (expr.TryGetProperty("mangle", out var mangle) && mangle.TryGetProperty("value", out var value)
                && value.TryGetProperty("|", out var or) && or.ValueKind == JsonValueKind.Array
                && or.EnumerateArray().Any(v => Number(v) == LocalTrafficMark))
            {
                keepsClient = true;
            }
            else if (expr.TryGetProperty("dnat", out var dnat)
                && dnat.TryGetProperty("addr", out var addr) && addr.TryGetProperty("map", out var map)
                && map.GetProperty("key").TryGetProperty("concat", out var concat) && concat.GetArrayLength() == 3
                && (concat[2].TryGetProperty("numgen", out var numgen) || IsSourceJhash(concat[2], out numgen))
                && map.GetProperty("data") is { ValueKind: JsonValueKind.String } data && data.GetString() is { } mapName && mapName.StartsWith('@'))
            {
                var jhash = !numgen.TryGetProperty("mode", out var mode);
                return new NftDnatRule(
                    rule.GetProperty("handle").GetInt64(),
                    null,
                    null,
                    jhash ? NftDnatRule.Jhash : mode.GetString() ?? "?",
                    numgen.GetProperty("mod").GetInt32(),
                    numgen.TryGetProperty("offset", out var offset) ? offset.GetInt32() : 0,
                    [],
                    keepsClient)
                {
                    Seed = jhash && numgen.TryGetProperty("seed", out var seed) ? seed.GetUInt32() : 0,
                    Map = mapName[1..],
                };
            }
        }

        return null;
    }

    /// <summary>A maglev rule's key, <c>{"jhash": {"mod": M, "seed": S, "expr": {"payload": {"protocol": "ip", "field": "saddr"}}}}</c>.</summary>
    private static bool IsSourceJhash(JsonElement key, out JsonElement jhash) =>
        key.TryGetProperty("jhash", out jhash)
        && jhash.TryGetProperty("expr", out var expr) && expr.TryGetProperty("payload", out var payload)
        && payload.TryGetProperty("field", out var field) && field.GetString() == "saddr"
        && jhash.TryGetProperty("mod", out _);

    /// <summary>A mark as nft's JSON prints it: a number, or a hex string in some versions.</summary>
    private static long? Number(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number => value.GetInt64(),
        JsonValueKind.String when value.GetString() is { } s && s.StartsWith("0x", StringComparison.Ordinal)
            && long.TryParse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var v) => v,
        _ => null,
    };
}
