namespace Mesh.Ipvs.Tests;

internal static class Hex
{
    /// <summary>Parses hex with any whitespace, '|' separators and "// comments" to end of line.</summary>
    public static byte[] Parse(string s)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var line in s.Split('\n'))
        {
            int c = line.IndexOf("//", StringComparison.Ordinal);
            var l = c >= 0 ? line[..c] : line;
            foreach (char ch in l)
            {
                if (Uri.IsHexDigit(ch)) sb.Append(ch);
            }
        }
        return Convert.FromHexString(sb.ToString());
    }

    public static string Format(ReadOnlySpan<byte> b) => Convert.ToHexString(b).ToLowerInvariant();
}
