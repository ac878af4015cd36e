using System.Globalization;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Nftables;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>
/// What the sandbox table does with each published port, read from its elements' nft texts: the picking chain the port
/// dispatches to and the port's slots of the map that chain looks up, as
/// <c>tcp . 8080 : goto pick-rr-2 { 0 : 10.255.0.5 . 80, 1 : 10.255.0.6 . 80 }</c>.
/// </summary>
internal static class SandboxTableText
{
    public static IReadOnlyList<string> Ports(NftDesiredTable table)
    {
        var slots = table.Maps.Where(m => m.Name is IngressSandboxTable.BackendsMap or IngressSandboxTable.MaglevMap)
            .SelectMany(m => m.Elements)
            .Select(e => Split(e.Text))
            .ToLookup(x => x.Prefix);
        return table.Maps.Single(m => m.Name == IngressSandboxTable.PortChainsMap).Elements
            .Select(e =>
            {
                var colon = e.Text.IndexOf(" : ", StringComparison.Ordinal);
                var key = e.Text[..colon];
                var prefix = key[(key.IndexOf(" . ", StringComparison.Ordinal) + 3)..];
                var values = string.Join(", ", slots[prefix].OrderBy(s => s.Slot).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Slot} : {s.Value}")));
                return $"{prefix} : {e.Text[(colon + 3)..]} {{ {values} }}";
            })
            .ToList();
    }

    /// <summary>The published port's line of <see cref="Ports"/> (<c>tcp . 8080</c>), or null when it dispatches nowhere.</summary>
    public static string? Port(NftDesiredTable table, string protoPort) =>
        Ports(table).SingleOrDefault(p => p.StartsWith(protoPort + " : ", StringComparison.Ordinal));

    /// <summary>The one rule of a picking chain.</summary>
    public static string Chain(NftDesiredTable table, string name) => table.Chains.Single(c => c.Name == name).Rules.Single().Text;

    private static (string Prefix, int Slot, string Value) Split(string text)
    {
        var colon = text.IndexOf(" : ", StringComparison.Ordinal);
        var left = text[..colon];
        var dot = left.LastIndexOf(" . ", StringComparison.Ordinal);
        return (left[..dot], int.Parse(left[(dot + 3)..], CultureInfo.InvariantCulture), text[(colon + 3)..]);
    }
}
