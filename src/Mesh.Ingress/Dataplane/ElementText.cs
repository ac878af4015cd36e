using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// The nft text of the sandbox's and a task's map elements, made from the element's bytes when asked
/// (<see cref="Kernel.Nftables.NftElement.Text"/>) instead of kept per element: what the tables wrote as text before, to
/// the character. Keys and data are laid out as the tables build them: each part of a concatenation padded to 4 bytes,
/// ports and addresses in network order, marks and slots in host order.
/// </summary>
internal static class ElementText
{
    /// <summary><c>published-ports</c>: <c>tcp . 8080 : 0x00000100</c>.</summary>
    public static string Published(SetElement element) =>
        string.Create(CultureInfo.InvariantCulture, $"{ProtoPort(element.Key.Span)} : {Mark(Data(element).Span)}");

    /// <summary><c>port-chains</c>: <c>0x00000100 . tcp . 8080 : goto pick-rr-3</c>.</summary>
    public static string Dispatch(SetElement element) =>
        string.Create(CultureInfo.InvariantCulture, $"{Mark(element.Key.Span)} . {ProtoPort(element.Key.Span[4..])} : {element.Verdict}");

    /// <summary><c>backends</c> and <c>maglev</c>: <c>tcp . 8080 . 2 : 10.255.0.7 . 80</c> (the slot or bucket third).</summary>
    public static string Backend(SetElement element)
    {
        var key = element.Key.Span;
        var data = Data(element).Span;
        return string.Create(CultureInfo.InvariantCulture, $"{ProtoPort(key)} . {Slot(key[8..])} : {Address(data)} . {BinaryPrimitives.ReadUInt16BigEndian(data[4..])}");
    }

    /// <summary>A task's <c>vips</c>: <c>10.255.0.5 : goto pick-rr-3</c>.</summary>
    public static string Vip(SetElement element) => string.Create(CultureInfo.InvariantCulture, $"{Address(element.Key.Span)} : {element.Verdict}");

    /// <summary>A task's <c>backends</c>: <c>10.255.0.5 . 2 : 10.255.0.7</c>.</summary>
    public static string TaskBackend(SetElement element) =>
        string.Create(CultureInfo.InvariantCulture, $"{Address(element.Key.Span)} . {Slot(element.Key.Span[4..])} : {Address(Data(element).Span)}");

    private static NftData Data(SetElement element) => element.Data ?? throw new ArgumentException($"map element {element.Key} has no data", nameof(element));

    private static string ProtoPort(ReadOnlySpan<byte> key) =>
        string.Create(CultureInfo.InvariantCulture, $"{(key[0] == 17 ? "udp" : "tcp")} . {BinaryPrimitives.ReadUInt16BigEndian(key[4..])}");

    private static string Mark(ReadOnlySpan<byte> value) => IngressSandboxTable.Mark((int)BinaryPrimitives.ReadUInt32LittleEndian(value));

    private static uint Slot(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadUInt32LittleEndian(value);

    private static IPAddress Address(ReadOnlySpan<byte> value) => new(value[..4]);
}
