using System.Globalization;

namespace Mesh.Discovery.Model;

/// <summary>A port published on every node (<see cref="Published"/>) forwarded to <see cref="Target"/> inside the tasks.</summary>
public sealed record PublishedPort(int Published, int Target, TransportProtocol Protocol = TransportProtocol.Tcp)
{
    /// <summary>The forms <see cref="Parse"/> accepts, for error messages and help.</summary>
    public const string AcceptedForms = "PUBLISHED:TARGET, PUBLISHED:TARGET/tcp or PUBLISHED:TARGET/udp (e.g. 8080:80)";

    /// <summary>
    /// Parses the CLI form <c>8080:80[/tcp|/udp]</c>. A lone port (<c>9300</c>) is refused: Docker reads it as "target
    /// 9300, published on a port the swarm picks", other tools as 9300:9300; guessing either would surprise someone.
    /// </summary>
    public static PublishedPort Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var protocol = TransportProtocol.Tcp;
        var ports = text;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            protocol = text[(slash + 1)..].ToLowerInvariant() switch
            {
                "tcp" => TransportProtocol.Tcp,
                "udp" => TransportProtocol.Udp,
                var other => throw new ValidationException("publish", $"unknown protocol '{other}' in '{text}' (expected tcp or udp)"),
            };
            ports = text[..slash];
        }

        var colon = ports.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            throw new ValidationException("publish", $"'{text}' names one port, but both are needed: use {AcceptedForms}; to publish {ports} as itself write {ports}:{ports}{(slash >= 0 ? text[slash..] : "")}");
        }

        var published = ParsePort(ports[..colon], text);
        var target = ParsePort(ports[(colon + 1)..], text);
        return new PublishedPort(published, target, protocol);
    }

    private static int ParsePort(string s, string whole) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535
            ? port
            : throw new ValidationException("publish", $"'{whole}' is not {AcceptedForms} with ports 1-65535");

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Published}:{Target}/{Protocol.ToString().ToLowerInvariant()}");
}
