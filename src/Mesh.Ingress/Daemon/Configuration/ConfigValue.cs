using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Mesh.Ingress.Daemon.Configuration;

/// <summary>
/// Turns one key's value from the file (JSON) or the environment (text) into flag arguments, checking its type
/// against the flag's: whole numbers for counts and seconds, true/false for switches, a list for repeatable flags.
/// What a value means (a range, an address) is left to the flag's own validation.
/// </summary>
internal static class ConfigValue
{
    public static IReadOnlyList<string> FromJson(Option option, JsonElement value, string where)
    {
        var type = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
        if (type == typeof(string[]))
        {
            // A single string is a list of one (a config with one "api" reads naturally either way).
            return value.ValueKind switch
            {
                JsonValueKind.String => [value.GetString()!],
                JsonValueKind.Array when value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String) => value.EnumerateArray().Select(v => v.GetString()!).ToArray(),
                _ => throw Wrong(where, "a string or a list of strings", value),
            };
        }

        if (type == typeof(string))
        {
            return value.ValueKind == JsonValueKind.String ? [value.GetString()!] : throw Wrong(where, "a string", value);
        }

        if (type == typeof(bool))
        {
            return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? [value.GetBoolean() ? "true" : "false"] : throw Wrong(where, "true or false", value);
        }

        if (type == typeof(int))
        {
            return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? [n.ToString(CultureInfo.InvariantCulture)] : throw Wrong(where, "a whole number", value);
        }

        if (type == typeof(double))
        {
            return value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var d) && double.IsFinite(d) ? [d.ToString("R", CultureInfo.InvariantCulture)] : throw Wrong(where, "a number", value);
        }

        // Any other type (an enum, a TimeSpan a later flag may use) goes to the flag's own parser as text.
        return value.ValueKind is JsonValueKind.String or JsonValueKind.Number
            ? [value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText()]
            : throw Wrong(where, "a string or a number", value);
    }

    /// <summary>An environment variable's text; a repeatable flag takes a comma-separated list.</summary>
    public static IReadOnlyList<string> FromText(Option option, string text, string where)
    {
        var type = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
        if (type == typeof(string[]))
        {
            return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        }

        if (type == typeof(string))
        {
            return [text];
        }

        if (type == typeof(bool))
        {
            return text.Trim().ToLowerInvariant() switch
            {
                "true" or "1" or "yes" => ["true"],
                "false" or "0" or "no" => ["false"],
                _ => throw new ArgumentException($"{where}='{text}' must be true or false"),
            };
        }

        if (type == typeof(int))
        {
            return int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                ? [n.ToString(CultureInfo.InvariantCulture)]
                : throw new ArgumentException($"{where}='{text}' must be a whole number");
        }

        if (type == typeof(double))
        {
            return double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)
                ? [d.ToString("R", CultureInfo.InvariantCulture)]
                : throw new ArgumentException($"{where}='{text}' must be a number");
        }

        return [text];
    }

    private static ArgumentException Wrong(string where, string expected, JsonElement value) =>
        new($"{where} must be {expected}, not {Describe(value)}");

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"the string {Shorten(value.GetRawText())}",
        JsonValueKind.Number => $"the number {Shorten(value.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "a list",
        _ => "an object",
    };

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
