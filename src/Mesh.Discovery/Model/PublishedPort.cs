using System.Globalization;

namespace Mesh.Discovery.Model;

/// <summary>A port published on every node (<see cref="Published"/>) forwarded to <see cref="Target"/> inside the tasks.</summary>
public sealed record PublishedPort(int Published, int Target, TransportProtocol Protocol = TransportProtocol.Tcp)
{
    /// <summary>Parses the CLI form <c>8080:80[/tcp|/udp]</c> (or <c>8080</c>, meaning 8080:8080).</summary>
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
        var published = ParsePort(colon < 0 ? ports : ports[..colon], text);
        var target = colon < 0 ? published : ParsePort(ports[(colon + 1)..], text);
        return new PublishedPort(published, target, protocol);
    }

    private static int ParsePort(string s, string whole) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535
            ? port
            : throw new ValidationException("publish", $"'{whole}' is not PUBLISHED:TARGET[/tcp|/udp] with ports 1-65535");

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Published}:{Target}/{Protocol.ToString().ToLowerInvariant()}");
}
