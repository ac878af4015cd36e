using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// The PROXY protocol version 2 header (haproxy's proxy-protocol.txt, section 2.2): the binary preamble a relay
/// sends before the client's bytes so the server learns the client's address. One codec for both ends: the lab's
/// task server reads it, the ingress relay writes it.
/// </summary>
public sealed record ProxyHeaderV2(ProxyCommand Command, ProxyTransport Transport, IPEndPoint? Source, IPEndPoint? Destination)
{
    /// <summary>The 12-byte signature every v2 header starts with (it cannot start an HTTP request or a TLS hello).</summary>
    public static ReadOnlySpan<byte> Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>Signature, version/command, family/transport and the 16-bit length of what follows.</summary>
    public const int FixedLength = 16;

    /// <summary>The most a header may carry after the fixed part; more is refused rather than buffered.</summary>
    public const int MaxBodyLength = 1024;

    private const byte Version2 = 0x20;
    private const byte FamilyInet = 0x10;
    private const byte FamilyInet6 = 0x20;
    private const int Inet4AddressLength = 12;
    private const int Inet6AddressLength = 36;

    /// <summary>A PROXY command from <paramref name="source"/> to <paramref name="destination"/> (same address family).</summary>
    public static ProxyHeaderV2 ForConnection(ProxyTransport transport, IPEndPoint source, IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (source.AddressFamily != destination.AddressFamily)
        {
            throw new ArgumentException($"source {source} and destination {destination} are of different address families", nameof(destination));
        }

        return new ProxyHeaderV2(ProxyCommand.Proxy, transport, Normalize(source), Normalize(destination));
    }

    /// <summary>Bytes on the wire: the header with the addresses and no TLVs.</summary>
    public byte[] ToBytes()
    {
        var inet6 = Command == ProxyCommand.Proxy && Source!.AddressFamily == AddressFamily.InterNetworkV6;
        var bodyLength = Command == ProxyCommand.Local ? 0 : inet6 ? Inet6AddressLength : Inet4AddressLength;
        var bytes = new byte[FixedLength + bodyLength];
        Signature.CopyTo(bytes);
        bytes[12] = (byte)(Version2 | (byte)Command);
        bytes[13] = Command == ProxyCommand.Local ? (byte)0 : (byte)((inet6 ? FamilyInet6 : FamilyInet) | (byte)Transport);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)bodyLength);
        if (bodyLength > 0)
        {
            var addressLength = inet6 ? 16 : 4;
            var body = bytes.AsSpan(FixedLength);
            Source!.Address.TryWriteBytes(body, out _);
            Destination!.Address.TryWriteBytes(body[addressLength..], out _);
            BinaryPrimitives.WriteUInt16BigEndian(body[(2 * addressLength)..], (ushort)Source.Port);
            BinaryPrimitives.WriteUInt16BigEndian(body[(2 * addressLength + 2)..], (ushort)Destination.Port);
        }

        return bytes;
    }

    /// <summary>
    /// Reads a header from the start of <paramref name="data"/>. <see cref="ProxyParse.NotProxy"/> when the bytes
    /// are not a v2 header (a plain client), <see cref="ProxyParse.Incomplete"/> when more bytes are needed;
    /// otherwise the header and its length on the wire. A malformed header throws <see cref="FormatException"/>.
    /// </summary>
    public static ProxyParse TryRead(ReadOnlySpan<byte> data, out ProxyHeaderV2? header, out int consumed)
    {
        header = null;
        consumed = 0;
        var signature = Signature;
        var compared = Math.Min(data.Length, signature.Length);
        if (!data[..compared].SequenceEqual(signature[..compared]))
        {
            return ProxyParse.NotProxy;
        }

        if (data.Length < FixedLength)
        {
            return ProxyParse.Incomplete;
        }

        if ((data[12] & 0xF0) != Version2)
        {
            throw new FormatException($"PROXY header version {data[12] >> 4} (only 2 is understood)");
        }

        var command = (data[12] & 0x0F) switch
        {
            0 => ProxyCommand.Local,
            1 => ProxyCommand.Proxy,
            var other => throw new FormatException($"PROXY v2 command {other} (expected 0 LOCAL or 1 PROXY)"),
        };
        var length = BinaryPrimitives.ReadUInt16BigEndian(data[14..]);
        if (length > MaxBodyLength)
        {
            throw new FormatException($"PROXY v2 header announces {length} bytes (at most {MaxBodyLength} accepted)");
        }

        if (data.Length < FixedLength + length)
        {
            return ProxyParse.Incomplete;
        }

        consumed = FixedLength + length;
        var body = data.Slice(FixedLength, length);
        var transport = (ProxyTransport)(data[13] & 0x0F);
        if (command == ProxyCommand.Local || (data[13] & 0xF0) is not (FamilyInet or FamilyInet6))
        {
            // LOCAL (a health check from the relay itself) or an unspecified/unix family: keep the socket's addresses.
            header = new ProxyHeaderV2(command, transport, null, null);
            return ProxyParse.Complete;
        }

        var inet6 = (data[13] & 0xF0) == FamilyInet6;
        var addressLength = inet6 ? 16 : 4;
        if (body.Length < (inet6 ? Inet6AddressLength : Inet4AddressLength))
        {
            throw new FormatException($"PROXY v2 {(inet6 ? "IPv6" : "IPv4")} header carries {body.Length} address bytes (needs {(inet6 ? Inet6AddressLength : Inet4AddressLength)})");
        }

        var source = new IPEndPoint(new IPAddress(body[..addressLength]), BinaryPrimitives.ReadUInt16BigEndian(body[(2 * addressLength)..]));
        var destination = new IPEndPoint(new IPAddress(body.Slice(addressLength, addressLength)), BinaryPrimitives.ReadUInt16BigEndian(body[(2 * addressLength + 2)..]));
        header = new ProxyHeaderV2(command, transport, source, destination);
        return ProxyParse.Complete;
    }

    private static IPEndPoint Normalize(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;
}

/// <summary>The v2 command: PROXY carries a client's addresses, LOCAL is the relay speaking for itself.</summary>
public enum ProxyCommand : byte
{
    Local = 0,
    Proxy = 1,
}

/// <summary>The transport nibble of the family byte.</summary>
public enum ProxyTransport : byte
{
    Unspecified = 0,
    Stream = 1,
    Datagram = 2,
}

/// <summary>What <see cref="ProxyHeaderV2.TryRead"/> found.</summary>
public enum ProxyParse
{
    NotProxy,
    Incomplete,
    Complete,
}
