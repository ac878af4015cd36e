using System.Text;

namespace Mesh.Discovery.Dns;

/// <summary>
/// An absolute domain name, stored in uncompressed wire form (length-prefixed labels ending with the
/// root label). Immutable. Equality and hashing are ASCII case-insensitive (RFC 4343); the original
/// case is preserved, so a question is echoed exactly as the client sent it (0x20 randomisation).
/// </summary>
public sealed class DnsName : IEquatable<DnsName>
{
    /// <summary>Maximum wire length of a name, including the root label (RFC 1035 §2.3.4).</summary>
    public const int MaxWireLength = 255;
    /// <summary>Maximum label length (RFC 1035 §2.3.4).</summary>
    public const int MaxLabelLength = 63;

    private readonly byte[] _wire;
    private readonly int _hash;
    private string? _text;

    /// <summary>The root name ".".</summary>
    public static readonly DnsName Root = new([0]);

    private DnsName(byte[] wire)
    {
        _wire = wire;
        _hash = ComputeHash(wire);
    }

    /// <summary>The uncompressed wire form, including the terminating root label.</summary>
    public ReadOnlySpan<byte> WireFormat => _wire;

    /// <summary>Length of the uncompressed wire form (1 for the root).</summary>
    public int WireLength => _wire.Length;

    /// <summary>Number of labels, not counting the root label.</summary>
    public int LabelCount
    {
        get
        {
            int n = 0;
            for (int i = 0; _wire[i] != 0; i += _wire[i] + 1) n++;
            return n;
        }
    }

    public bool IsRoot => _wire.Length == 1;

    /// <summary>The raw bytes of label <paramref name="index"/> (0 = leftmost).</summary>
    public ReadOnlySpan<byte> GetLabel(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        int i = 0;
        for (int n = 0; _wire[i] != 0; i += _wire[i] + 1, n++)
        {
            if (n == index) return _wire.AsSpan(i + 1, _wire[i]);
        }
        throw new ArgumentOutOfRangeException(nameof(index));
    }

    /// <summary>The name without its first <paramref name="count"/> labels.</summary>
    public DnsName Parent(int count = 1)
    {
        int i = 0;
        for (int n = 0; n < count; n++)
        {
            if (_wire[i] == 0) throw new ArgumentOutOfRangeException(nameof(count));
            i += _wire[i] + 1;
        }
        return i == 0 ? this : (i == _wire.Length - 1 ? Root : new DnsName(_wire[i..]));
    }

    /// <summary>A new name with <paramref name="label"/> prepended.</summary>
    public DnsName Prepend(string label)
    {
        var bytes = Encoding.ASCII.GetBytes(label);
        if (bytes.Length is 0 or > MaxLabelLength) throw new ArgumentException("label must be 1..63 bytes", nameof(label));
        if (bytes.Length + 1 + _wire.Length > MaxWireLength) throw new ArgumentException("name too long", nameof(label));
        var w = new byte[bytes.Length + 1 + _wire.Length];
        w[0] = (byte)bytes.Length;
        bytes.CopyTo(w, 1);
        _wire.CopyTo(w, bytes.Length + 1);
        return new DnsName(w);
    }

    /// <summary>True when this name equals <paramref name="parent"/> or lies below it (case-insensitive).</summary>
    public bool IsSubdomainOf(DnsName parent)
    {
        int skip = LabelCount - parent.LabelCount;
        if (skip < 0) return false;
        int i = 0;
        for (int n = 0; n < skip; n++) i += _wire[i] + 1;
        return EqualsIgnoreCase(_wire.AsSpan(i), parent._wire);
    }

    /// <summary>Builds a name from wire bytes already validated by the codec.</summary>
    internal static DnsName FromValidatedWire(ReadOnlySpan<byte> wire) =>
        wire.Length == 1 ? Root : new DnsName(wire.ToArray());

    /// <summary>Builds a name from uncompressed wire bytes, validating them.</summary>
    public static DnsName FromWire(ReadOnlySpan<byte> wire)
    {
        if (wire.Length is 0 or > MaxWireLength) throw new FormatException("bad name length");
        int i = 0;
        while (true)
        {
            if (i >= wire.Length) throw new FormatException("name not terminated");
            byte l = wire[i];
            if (l == 0) break;
            if (l > MaxLabelLength) throw new FormatException("label too long");
            i += l + 1;
        }
        if (i != wire.Length - 1) throw new FormatException("trailing bytes after name");
        return FromValidatedWire(wire);
    }

    /// <summary>Builds a name from labels (raw, no escaping).</summary>
    public static DnsName FromLabels(params string[] labels)
    {
        var w = new List<byte>();
        foreach (var label in labels)
        {
            var b = Encoding.UTF8.GetBytes(label);
            if (b.Length is 0 or > MaxLabelLength) throw new ArgumentException("label must be 1..63 bytes");
            w.Add((byte)b.Length);
            w.AddRange(b);
        }
        w.Add(0);
        if (w.Count > MaxWireLength) throw new ArgumentException("name too long");
        return FromValidatedWire(w.ToArray());
    }

    /// <summary>
    /// Parses presentation form: "www.example.com", "www.example.com." and "." are accepted (all names
    /// are absolute). Escapes "\X" and "\DDD" are honoured.
    /// </summary>
    public static DnsName Parse(string text) =>
        TryParse(text, out var name) ? name : throw new FormatException($"invalid domain name '{text}'");

    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out DnsName? name)
    {
        name = null;
        if (string.IsNullOrEmpty(text)) return false;
        if (text == ".") { name = Root; return true; }
        Span<byte> buf = stackalloc byte[MaxWireLength];
        int w = 0;
        int labelStart = 0;
        int labelLen = 0;
        bool lastWasDot = false;
        buf[w++] = 0; // placeholder for first label length
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            int value;
            if (c == '.')
            {
                if (labelLen == 0) return false; // empty label
                buf[labelStart] = (byte)labelLen;
                if (w >= MaxWireLength) return false;
                labelStart = w;
                buf[w++] = 0;
                labelLen = 0;
                lastWasDot = true;
                continue;
            }
            lastWasDot = false;
            if (c == '\\')
            {
                if (i + 1 >= text.Length) return false;
                char d = text[i + 1];
                if (char.IsAsciiDigit(d))
                {
                    if (i + 3 >= text.Length || !char.IsAsciiDigit(text[i + 2]) || !char.IsAsciiDigit(text[i + 3])) return false;
                    value = (d - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
                    if (value > 255) return false;
                    i += 3;
                }
                else
                {
                    if (d > 0x7F) return false;
                    value = d;
                    i += 1;
                }
            }
            else
            {
                if (c > 0x7F) return false;
                value = c;
            }
            if (labelLen == MaxLabelLength || w >= MaxWireLength) return false;
            buf[w++] = (byte)value;
            labelLen++;
        }
        if (!lastWasDot)
        {
            if (labelLen == 0) return false;
            buf[labelStart] = (byte)labelLen;
            if (w >= MaxWireLength) return false;
            buf[w++] = 0;
        }
        name = FromValidatedWire(buf[..w]);
        return true;
    }

    /// <summary>
    /// Presentation form without the trailing dot ("tasks.web"; the root is "."). Bytes outside
    /// printable ASCII and the characters <c>. \ " ( ) ; @ $</c> and space are escaped as dig does.
    /// </summary>
    public override string ToString() => _text ??= Format(_wire);

    /// <summary>Longest presentation form: every byte of a 255-byte name escaped as <c>\DDD</c>.</summary>
    internal const int MaxTextLength = MaxWireLength * 4;

    /// <summary>
    /// Writes <see cref="ToString"/>'s text, ASCII letters lower-cased, into <paramref name="dest"/> (≥ <see cref="MaxTextLength"/>)
    /// and returns its length: what <c>ToString().ToLowerInvariant()</c> gives, without allocating.
    /// </summary>
    internal int FormatLower(Span<char> dest) => Format(_wire, dest, lower: true);

    private static string Format(byte[] wire)
    {
        Span<char> text = stackalloc char[MaxTextLength];
        return new string(text[..Format(wire, text, lower: false)]);
    }

    private static int Format(ReadOnlySpan<byte> wire, Span<char> dest, bool lower)
    {
        if (wire.Length == 1)
        {
            dest[0] = '.';
            return 1;
        }
        int n = 0;
        for (int i = 0; wire[i] != 0; i += wire[i] + 1)
        {
            if (i != 0) dest[n++] = '.';
            foreach (byte b in wire.Slice(i + 1, wire[i]))
            {
                if (b is (byte)'.' or (byte)'\\' or (byte)'"' or (byte)'(' or (byte)')' or (byte)';' or (byte)'@' or (byte)'$')
                {
                    dest[n++] = '\\';
                    dest[n++] = (char)b;
                }
                else if (b <= 0x20 || b >= 0x7F)
                {
                    dest[n++] = '\\';
                    dest[n++] = (char)('0' + b / 100);
                    dest[n++] = (char)('0' + b / 10 % 10);
                    dest[n++] = (char)('0' + b % 10);
                }
                else
                {
                    dest[n++] = (char)(lower ? ToLower(b) : b);
                }
            }
        }
        return n;
    }

    public bool Equals(DnsName? other) =>
        other is not null && (ReferenceEquals(this, other) || (_hash == other._hash && EqualsIgnoreCase(_wire, other._wire)));

    public override bool Equals(object? obj) => obj is DnsName n && Equals(n);

    public override int GetHashCode() => _hash;

    /// <summary>Case-insensitive equality against a presentation-form string.</summary>
    public bool Equals(string? text) => text is not null && TryParse(text, out var n) && Equals(n);

    public static bool operator ==(DnsName? a, DnsName? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(DnsName? a, DnsName? b) => !(a == b);

    internal static byte ToLower(byte b) => (uint)(b - 'A') <= 'Z' - 'A' ? (byte)(b | 0x20) : b;

    internal static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] != b[i] && ToLower(a[i]) != ToLower(b[i])) return false;
        }
        return true;
    }

    private static int ComputeHash(ReadOnlySpan<byte> wire)
    {
        // FNV-1a over the lower-cased bytes. Deterministic: do not key hash tables by client-chosen names
        // (the server itself never does).
        uint h = 2166136261;
        foreach (byte b in wire) h = (h ^ ToLower(b)) * 16777619;
        return (int)h;
    }
}
