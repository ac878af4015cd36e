using System.Globalization;

namespace Mesh.LoadTests.Core;

/// <summary>Parses and prints durations the way load-test tools write them: "5s", "250ms", "2m", "1h", "1.5s"; a bare number is seconds.</summary>
public static class Durations
{
    public static TimeSpan Parse(string text)
    {
        if (!TryParse(text, out var t)) throw new FormatException($"not a duration: '{text}' (use e.g. 5s, 250ms, 2m)");
        return t;
    }

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim().ToLowerInvariant();
        (string unit, double scale)[] units = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("s", 1), ("m", 60), ("h", 3600)];
        double factor = 1;
        foreach (var (unit, scale) in units)
        {
            if (s.EndsWith(unit, StringComparison.Ordinal))
            {
                s = s[..^unit.Length];
                factor = scale;
                break;
            }
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0 || double.IsInfinity(n)) return false;
        value = TimeSpan.FromSeconds(n * factor);
        return true;
    }

    public static string Format(TimeSpan t)
    {
        if (t.TotalSeconds >= 60 && t.TotalSeconds % 60 == 0) return $"{t.TotalMinutes.ToString(CultureInfo.InvariantCulture)}m";
        if (t.TotalSeconds >= 1) return $"{Math.Round(t.TotalSeconds, 3).ToString(CultureInfo.InvariantCulture)}s";
        return $"{Math.Round(t.TotalMilliseconds, 3).ToString(CultureInfo.InvariantCulture)}ms";
    }
}
