using System.Globalization;

namespace Mesh.Ingress.Tests.Telemetry;

/// <summary>
/// A strict reader of Prometheus' text exposition format (version 0.0.4) as a scraper reads it: every sample line
/// is <c>name{labels} value</c>, every family is declared once by <c># TYPE</c> before its samples, label values
/// unescaped. Throws <see cref="FormatException"/> naming the line for anything else.
/// </summary>
internal sealed class PrometheusText
{
    public Dictionary<string, string> Types { get; } = new(StringComparer.Ordinal);

    public List<Sample> Samples { get; } = [];

    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
    {
        /// <summary>The labels other than <paramref name="except"/>, in a canonical order: what identifies a series.</summary>
        public string Key(string? except = null) =>
            string.Join(',', Labels.Where(l => l.Key != except).OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));
    }

    public static PrometheusText Parse(string text)
    {
        var result = new PrometheusText();
        var lineNumber = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line[7..].Split(' ');
                if (parts.Length != 2 || !result.Types.TryAdd(parts[0], parts[1]))
                {
                    throw new FormatException($"line {lineNumber}: bad or repeated TYPE: {line}");
                }

                continue;
            }

            if (line[0] == '#')
            {
                continue; // HELP, UNIT, comments
            }

            result.Samples.Add(ParseSample(line, lineNumber));
        }

        return result;
    }

    /// <summary>The family a sample belongs to: its name, or the name without a histogram's suffix.</summary>
    public string? FamilyOf(string sample)
    {
        if (Types.ContainsKey(sample))
        {
            return sample;
        }

        foreach (var suffix in new[] { "_bucket", "_sum", "_count", "_total" })
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && Types.ContainsKey(sample[..^suffix.Length]))
            {
                return sample[..^suffix.Length];
            }
        }

        return null;
    }

    private static Sample ParseSample(string line, int lineNumber)
    {
        var i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or ':'))
        {
            i++;
        }

        var name = line[..i];
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            throw new FormatException($"line {lineNumber}: bad metric name: {line}");
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var start = i;
                while (char.IsAsciiLetterOrDigit(line[i]) || line[i] == '_')
                {
                    i++;
                }

                var label = line[start..i];
                if (label.Length == 0 || line[i] != '=' || line[i + 1] != '"')
                {
                    throw new FormatException($"line {lineNumber}: bad label at {start}: {line}");
                }

                i += 2;
                var value = new System.Text.StringBuilder();
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        i++;
                        value.Append(line[i] switch { 'n' => '\n', '\\' => '\\', '"' => '"', _ => throw new FormatException($"line {lineNumber}: bad escape: {line}") });
                    }
                    else
                    {
                        value.Append(line[i]);
                    }

                    i++;
                }

                i++;
                if (!labels.TryAdd(label, value.ToString()))
                {
                    throw new FormatException($"line {lineNumber}: repeated label {label}: {line}");
                }

                if (line[i] == ',')
                {
                    i++;
                }
            }

            i++;
        }

        var fields = line[i..].Trim().Split(' ');
        if (fields.Length is < 1 or > 2 || !TryParseValue(fields[0], out var v))
        {
            throw new FormatException($"line {lineNumber}: bad value: {line}");
        }

        return new Sample(name, labels, v);
    }

    public static bool TryParseValue(string text, out double value)
    {
        switch (text)
        {
            case "+Inf":
                value = double.PositiveInfinity;
                return true;
            case "-Inf":
                value = double.NegativeInfinity;
                return true;
            case "NaN":
                value = double.NaN;
                return true;
            default:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
    }
}
