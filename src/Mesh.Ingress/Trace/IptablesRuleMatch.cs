using System.Globalization;
using System.Net;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Trace;

/// <summary>The first packet of a new connection, as far as the rules Mesh writes look at it.</summary>
public sealed record TracedPacket(string Protocol, string? Source, string Destination, int DestinationPort, bool SourceIsLocal, bool DestinationIsLocal, string? OutInterface);

/// <summary>
/// Evaluates one rule in iptables-save's canonical form against a <see cref="TracedPacket"/>: the matches Mesh's own
/// chains use (-p, -s, -d, --dport, --sport, addrtype, conntrack state, -o) and the target. A match it does not know
/// makes the rule <see cref="IptablesMatch.Unknown"/>: reported, never guessed.
/// </summary>
public static class IptablesRuleMatch
{
    public static IptablesMatch Evaluate(string rule, TracedPacket packet)
    {
        var tokens = rule.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var matched = true;
        for (var i = 0; i < tokens.Length; i++)
        {
            var negate = tokens[i] == "!";
            if (negate)
            {
                i++;
                if (i >= tokens.Length)
                {
                    return IptablesMatch.Unknown;
                }
            }

            var option = tokens[i];
            if (option is "-j" or "-g")
            {
                return matched ? IptablesMatch.Matches : IptablesMatch.NoMatch;
            }

            if (option == "-m")
            {
                i++; // the module's own options follow and are evaluated one by one
                continue;
            }

            if (i + 1 >= tokens.Length)
            {
                return IptablesMatch.Unknown;
            }

            var value = tokens[++i];
            bool? result = option switch
            {
                "-p" => value == packet.Protocol,
                "-d" => InPrefix(packet.Destination, value),
                "-s" => packet.Source is null ? null : InPrefix(packet.Source, value),
                "--dport" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port == packet.DestinationPort : null,
                "--sport" => false, // a client's source port is ephemeral: never a published port (these rules match replies)
                "--dst-type" => value == "LOCAL" ? packet.DestinationIsLocal : null,
                "--src-type" => value == "LOCAL" ? packet.SourceIsLocal : null,
                "--ctstate" => value.Split(',').Contains("NEW"),
                "-o" => packet.OutInterface is null ? null : value == packet.OutInterface,
                // statistic nth (mode=host spreads over local tasks): each such rule takes its share of new
                // connections, so for a trace every one of them is a candidate.
                "--mode" => value == "nth" ? true : null,
                "--every" or "--packet" => true,
                _ => null,
            };
            if (result is null)
            {
                return IptablesMatch.Unknown;
            }

            matched &= negate ? !result.Value : result.Value;
        }

        return IptablesMatch.Unknown; // no target: not a rule Mesh writes
    }

    /// <summary>The value of <paramref name="option"/> in <paramref name="rule"/> (e.g. -j's target, --to-destination).</summary>
    public static string? Option(string rule, string option)
    {
        var tokens = rule.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var at = Array.IndexOf(tokens, option);
        return at >= 0 && at + 1 < tokens.Length ? tokens[at + 1] : null;
    }

    private static bool? InPrefix(string address, string value)
    {
        var cidr = value.Contains('/', StringComparison.Ordinal) ? value : value + "/32";
        return Cidr.TryParse(cidr, out var prefix) && IPAddress.TryParse(address, out var ip) ? prefix.Contains(ip) : null;
    }
}

public enum IptablesMatch
{
    Matches,
    NoMatch,
    Unknown,
}
