namespace Mesh.Discovery.Dns;

/// <summary>
/// The one exception the codec throws for malformed wire data. Internal: callers outside the codec
/// see a FORMERR reply (header readable) or a dropped packet, never this type.
/// </summary>
internal sealed class DnsFormatException : Exception
{
    public DnsFormatException(string message) : base(message) { }

    public static DnsFormatException Truncated() => new("message truncated");
}
