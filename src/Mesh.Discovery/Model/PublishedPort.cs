using System.Globalization;
using System.Text.Json.Serialization;

namespace Mesh.Discovery.Model;

/// <summary>
/// A port published (<see cref="Published"/>) and forwarded to <see cref="Target"/> inside the tasks: on every node
/// by default, only on nodes with a task in <see cref="PublishMode.Host"/> mode. Options at their defaults are not
/// written to JSON, so a plain port reads and writes as it always did.
/// </summary>
public sealed record PublishedPort(int Published, int Target, TransportProtocol Protocol = TransportProtocol.Tcp)
{
    /// <summary>The forms <see cref="Parse"/> accepts, for error messages and help.</summary>
    public const string AcceptedForms = "PUBLISHED:TARGET, PUBLISHED:TARGET/tcp or PUBLISHED:TARGET/udp (e.g. 8080:80)";

    /// <summary>The options <see cref="Parse"/> accepts after the ports, for error messages and help.</summary>
    public const string AcceptedOptions = "mode=ingress|host, traffic=cluster|local, proxy=v2";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public PublishMode Mode { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public TrafficPolicy Traffic { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public ProxyProtocol Proxy { get; init; }

    /// <summary>True when the task sees the client's own address as the peer (no SNAT anywhere on the way).</summary>
    [JsonIgnore]
    public bool KeepsClientAddress => Mode == PublishMode.Host || Traffic == TrafficPolicy.Local;

    /// <summary>
    /// Parses the CLI form <c>8080:80[/tcp|/udp][,mode=host|,traffic=local|,proxy=v2]</c>. A lone port (<c>9300</c>) is
    /// refused: Docker reads it as "target 9300, published on a port the swarm picks", other tools as 9300:9300;
    /// guessing either would surprise someone.
    /// </summary>
    public static PublishedPort Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(',');
        var port = ParsePorts(parts[0], text);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var option in parts.Skip(1))
        {
            var eq = option.IndexOf('=', StringComparison.Ordinal);
            var key = (eq < 0 ? option : option[..eq]).Trim().ToLowerInvariant();
            var value = eq < 0 ? "" : option[(eq + 1)..].Trim().ToLowerInvariant();
            if (!seen.Add(key))
            {
                throw new ValidationException("publish", $"option '{Validate.Printable(key)}' is given twice in '{Validate.Printable(text)}'");
            }

            port = key switch
            {
                "mode" => port with
                {
                    Mode = value switch
                    {
                        "ingress" => PublishMode.Ingress,
                        "host" => PublishMode.Host,
                        _ => throw new ValidationException("publish", $"mode '{Validate.Printable(value)}' in '{Validate.Printable(text)}' is not ingress or host"),
                    },
                },
                "traffic" => port with
                {
                    Traffic = value switch
                    {
                        "cluster" => TrafficPolicy.Cluster,
                        "local" => TrafficPolicy.Local,
                        _ => throw new ValidationException("publish", $"traffic '{Validate.Printable(value)}' in '{Validate.Printable(text)}' is not cluster or local"),
                    },
                },
                "proxy" => port with
                {
                    Proxy = value switch
                    {
                        "v2" => ProxyProtocol.V2,
                        "none" => ProxyProtocol.None,
                        _ => throw new ValidationException("publish", $"proxy '{Validate.Printable(value)}' in '{Validate.Printable(text)}' is not v2 (the only PROXY protocol version supported)"),
                    },
                },
                _ => throw new ValidationException("publish", $"unknown option '{Validate.Printable(option)}' in '{Validate.Printable(text)}' (expected {AcceptedOptions})"),
            };
        }

        if (port.OptionsConflict() is { } why)
        {
            throw new ValidationException("publish", $"'{Validate.Printable(text)}': {why}");
        }

        return port;
    }

    /// <summary>Why these options cannot go together, or null. Shared by <see cref="Parse"/> and the store's rules.</summary>
    public string? OptionsConflict()
    {
        if (Mode == PublishMode.Host && Traffic == TrafficPolicy.Local)
        {
            return "mode=host already sends only to the node's own tasks; traffic=local is meaningless with it (use one or the other)";
        }

        if (Proxy == ProxyProtocol.V2 && KeepsClientAddress)
        {
            return $"proxy=v2 goes through the routing mesh's relay, which {(Mode == PublishMode.Host ? "mode=host" : "traffic=local")} bypasses (and the task sees the client's address anyway): use one or the other";
        }

        return null;
    }

    private static PublishedPort ParsePorts(string text, string whole)
    {
        var protocol = TransportProtocol.Tcp;
        var ports = text;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            protocol = text[(slash + 1)..].ToLowerInvariant() switch
            {
                "tcp" => TransportProtocol.Tcp,
                "udp" => TransportProtocol.Udp,
                var other => throw new ValidationException("publish", $"unknown protocol '{Validate.Printable(other)}' in '{Validate.Printable(whole)}' (expected tcp or udp)"),
            };
            ports = text[..slash];
        }

        var colon = ports.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            throw new ValidationException("publish", $"'{Validate.Printable(whole)}' names one port, but both are needed: use {AcceptedForms}; to publish {Validate.Printable(ports)} as itself write {Validate.Printable(ports)}:{Validate.Printable(ports)}{(slash >= 0 ? Validate.Printable(text[slash..]) : "")}");
        }

        var published = ParsePort(ports[..colon], whole);
        var target = ParsePort(ports[(colon + 1)..], whole);
        return new PublishedPort(published, target, protocol);
    }

    private static int ParsePort(string s, string whole) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535
            ? port
            : throw new ValidationException("publish", $"'{Validate.Printable(whole)}' is not {AcceptedForms} with ports 1-65535");

    public override string ToString()
    {
        var text = string.Create(CultureInfo.InvariantCulture, $"{Published}:{Target}/{Protocol.ToString().ToLowerInvariant()}");
        if (Mode != PublishMode.Ingress)
        {
            text += ",mode=" + Mode.ToString().ToLowerInvariant();
        }

        if (Traffic != TrafficPolicy.Cluster)
        {
            text += ",traffic=" + Traffic.ToString().ToLowerInvariant();
        }

        if (Proxy != ProxyProtocol.None)
        {
            text += ",proxy=" + Proxy.ToString().ToLowerInvariant();
        }

        return text;
    }
}
