using System.Text.Json;
using System.Text.RegularExpressions;

namespace Mesh.Ingress.Api;

/// <summary>
/// A rejected request body told in plain words: System.Text.Json's messages name .NET types and members
/// ("could not be converted to System.Int32", "any .NET member contained in type 'Mesh.Discovery.Store.ServiceSpec'"),
/// which mean nothing to an API user. The error's field already says where; this says what is wrong there.
/// </summary>
public static partial class JsonErrorText
{
    public static string Describe(JsonException e)
    {
        var message = e.Message;
        if (ConvertTo().Match(message) is { Success: true } convert)
        {
            return $"has the wrong JSON type: expected {Expected(convert.Groups["type"].Value, e.Path)}";
        }

        if (Unmapped().Match(message) is { Success: true } unmapped)
        {
            return $"unknown field '{unmapped.Groups["name"].Value}'";
        }

        if (MissingRequired().Match(message) is { Success: true } missing)
        {
            return $"missing required field(s) {missing.Groups["names"].Value.TrimEnd('.')}";
        }

        if (DisallowsNull().Match(message) is { Success: true } nulls)
        {
            return $"'{nulls.Groups["name"].Value}' must not be null";
        }

        // The reader's own errors (bad syntax, depth, trailing data) are plain already, but for their trailers.
        var text = PathBeforePosition().Replace(message, " ");
        text = Position().Replace(text, m => $" (line {long.Parse(m.Groups["line"].Value, System.Globalization.CultureInfo.InvariantCulture) + 1}, byte {long.Parse(m.Groups["byte"].Value, System.Globalization.CultureInfo.InvariantCulture) + 1})");
        text = text.Replace(" Change the reader options.", "", StringComparison.Ordinal)
            .Replace(" Consider updating its nullability annotation.", "", StringComparison.Ordinal);
        var path = text.IndexOf(" Path:", StringComparison.Ordinal);
        text = path > 0 ? text[..path] : text;

        // Whatever message this is, no type name reaches the client.
        text = TypeName().Replace(text, "the expected type");
        return "malformed JSON: " + text.Replace(".NET ", "", StringComparison.Ordinal).TrimEnd();
    }

    /// <summary>
    /// What a JSON value of this .NET type looks like, in the API's words. A record bound through its constructor is
    /// named by the serializer as the record's type, with the path at the member: then the member's type is meant.
    /// </summary>
    internal static string Expected(string typeName, string? path)
    {
        var name = NullableOf().Match(typeName) is { Success: true } nullable ? nullable.Groups["inner"].Value : typeName;
        Type? type;
        try
        {
            type = Type.GetType(name) ?? typeof(Discovery.Model.ServiceMode).Assembly.GetType(name);
        }
        catch (Exception e) when (e is ArgumentException or TypeLoadException or IOException or BadImageFormatException)
        {
            type = null; // a name the loader cannot parse: fall back to reading the name
        }

        if (type is { IsClass: true } && type != typeof(string) && !type.IsArray && Member(type, path) is { } member)
        {
            type = member;
        }

        return type is null ? ExpectedByName(name) : Expected(type);
    }

    private static Type? Member(Type type, string? path)
    {
        var last = (path ?? "").Split('.')[^1];
        var bracket = last.IndexOf('[', StringComparison.Ordinal);
        var member = type.GetProperties().FirstOrDefault(p => string.Equals(p.Name, bracket >= 0 ? last[..bracket] : last, StringComparison.OrdinalIgnoreCase))?.PropertyType;
        return bracket >= 0 && member is not null ? ElementOf(member) : member;
    }

    private static Type? ElementOf(Type type) =>
        type.IsArray ? type.GetElementType() : type.IsGenericType ? type.GetGenericArguments()[^1] : null;

    private static string Expected(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum)
        {
            return "one of " + string.Join(", ", Enum.GetNames(type).Select(JsonNamingPolicy.SnakeCaseLower.ConvertName));
        }

        if (type == typeof(string))
        {
            return "a string";
        }

        if (type == typeof(bool))
        {
            return "true or false";
        }

        if (type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte) || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort))
        {
            return "an integer";
        }

        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal))
        {
            return "a number";
        }

        if (type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>)) || (type.IsGenericType && type.Name.Contains("Dictionary", StringComparison.Ordinal)))
        {
            return "an object";
        }

        return type.IsArray || typeof(System.Collections.IEnumerable).IsAssignableFrom(type) ? "an array" : "an object";
    }

    private static string ExpectedByName(string name) =>
        name.EndsWith("[]", StringComparison.Ordinal) || name.Contains("List`1", StringComparison.Ordinal) ? "an array"
        : name.Contains("Dictionary`2", StringComparison.Ordinal) ? "an object"
        : "another type";

    [GeneratedRegex(@"could not be converted to (?<type>\S+?)\.?(\s|$)")]
    private static partial Regex ConvertTo();

    [GeneratedRegex(@"The JSON property '(?<name>.*)' could not be mapped to any \.NET member")]
    private static partial Regex Unmapped();

    [GeneratedRegex(@"was missing required properties,? including:? (?<names>.+?)(\.?$| Path:)")]
    private static partial Regex MissingRequired();

    [GeneratedRegex(@"(constructor parameter|property or field) '(?<name>[^']*)' on type '[^']*' doesn't allow (getting |setting )?null values")]
    private static partial Regex DisallowsNull();

    [GeneratedRegex(@"\s*Path: [^|]*\|\s*")]
    private static partial Regex PathBeforePosition();

    [GeneratedRegex(@"\.?\s*LineNumber: (?<line>\d+) \| BytePositionInLine: (?<byte>\d+)\.?")]
    private static partial Regex Position();

    [GeneratedRegex(@"'?\b(System|Mesh|Microsoft)\.[\w.`]+(\[[^\]]*\])?'?")]
    private static partial Regex TypeName();

    [GeneratedRegex(@"^System\.Nullable`1\[+(?<inner>[^\],]+)")]
    private static partial Regex NullableOf();
}
