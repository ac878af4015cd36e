using System.Text.Json.Serialization;

namespace Mesh.Discovery.Model;

/// <summary>
/// How the L7 entry speaks to a service's tasks (<c>--backend-protocol</c>; JSON <c>backendProtocol</c>, written as the
/// CLI spells it). Whatever the client spoke to the entry (HTTP/1.1, h2c, HTTP/2 over TLS), this is the backend leg's.
/// </summary>
public enum BackendProtocol
{
    /// <summary>HTTP/1.1 to the tasks (YARP's default would offer HTTP/2 but, without TLS, fall back to 1.1 anyway).</summary>
    [JsonStringEnumMemberName("http1")]
    Http1,

    /// <summary>
    /// HTTP/2 with prior knowledge in cleartext (RFC 9113 §3.3): gRPC servers and other HTTP/2-only endpoints. Exactly
    /// HTTP/2: a task that only speaks HTTP/1.1 fails the request (502) rather than being downgraded to silently.
    /// </summary>
    [JsonStringEnumMemberName("h2c")]
    H2c,
}

/// <summary>Parsing and the combinations <see cref="BackendProtocol"/> accepts.</summary>
public static class BackendProtocols
{
    public static string Name(BackendProtocol protocol) => protocol switch
    {
        BackendProtocol.Http1 => "http1",
        BackendProtocol.H2c => "h2c",
        _ => protocol.ToString(),
    };

    public static BackendProtocol Parse(string field, string? value) => value?.ToLowerInvariant() switch
    {
        "http1" => BackendProtocol.Http1,
        "h2c" => BackendProtocol.H2c,
        _ => throw new ValidationException(field, $"'{Validate.Printable(value)}' is not http1 or h2c"),
    };

    /// <summary>
    /// Only the L7 entry speaks HTTP to the tasks: h2c without a route would be a setting nothing reads (published ports
    /// are forwarded as bytes, whatever the protocol), so it is refused rather than silently ignored.
    /// </summary>
    public static void Check(BackendProtocol protocol, IReadOnlyList<ServiceRoute> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        if (!Enum.IsDefined(protocol))
        {
            throw new ValidationException("backendProtocol", "must be http1 or h2c");
        }

        if (protocol == BackendProtocol.H2c && routes.Count == 0)
        {
            throw new ValidationException("backendProtocol", "h2c is how the L7 entry speaks to the tasks: the service needs a --route (published ports carry any protocol as it is)");
        }
    }
}
