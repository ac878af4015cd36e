using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mesh.Discovery.Model;

/// <summary>
/// A small read-only string → string map (a task's or a service's addresses by network: one to a few entries) kept
/// as one array of pairs. A <see cref="Dictionary{TKey,TValue}"/> of one entry is ~220 bytes (the object, its bucket
/// and entry arrays); this is ~64, and at 10,000 services × 5 tasks the state holds 60,000 of them (BENCHMARKS.md,
/// the daemon's memory). Lookups are a scan of the pairs, as fast as hashing for so few keys. Ordinal keys, in the
/// order given; a key given twice is refused. Values may be null as a dictionary's may (the object rules refuse them).
/// </summary>
public sealed class StringMap : IReadOnlyDictionary<string, string>
{
    private readonly KeyValuePair<string, string>[] _pairs;

    private StringMap(KeyValuePair<string, string>[] pairs) => _pairs = pairs;

    public static StringMap Empty { get; } = new([]);

    /// <summary>The pairs of <paramref name="map"/> (the same object when it is a <see cref="StringMap"/>).</summary>
    public static StringMap Of(IEnumerable<KeyValuePair<string, string>> map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map is StringMap same)
        {
            return same;
        }

        var pairs = map.ToArray();
        return pairs.Length == 0 ? Empty : Checked(pairs);
    }

    private static StringMap Checked(KeyValuePair<string, string>[] pairs)
    {
        for (var i = 0; i < pairs.Length; i++)
        {
            ArgumentNullException.ThrowIfNull(pairs[i].Key, "key");
            for (var j = 0; j < i; j++)
            {
                if (string.Equals(pairs[i].Key, pairs[j].Key, StringComparison.Ordinal))
                {
                    throw new ArgumentException($"the key '{pairs[i].Key}' is given twice", nameof(pairs));
                }
            }
        }

        return new StringMap(pairs);
    }

    public int Count => _pairs.Length;

    public string this[string key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"no '{key}' in the map");

    public IEnumerable<string> Keys => _pairs.Select(p => p.Key);

    public IEnumerable<string> Values => _pairs.Select(p => p.Value);

    public bool ContainsKey(string key) => TryGetValue(key, out _);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (var pair in _pairs)
        {
            if (string.Equals(pair.Key, key, StringComparison.Ordinal))
            {
                value = pair.Value;
                return true;
            }
        }

        value = null;
        return false;
    }

    public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, string>>)_pairs).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// Reads a JSON object of strings straight into a <see cref="StringMap"/> (for a property typed as the read-only
    /// dictionary). The ingress network's name, the key of nearly every entry, is the one shared string rather than a
    /// copy per object.
    /// </summary>
    public sealed class Converter : JsonConverter<IReadOnlyDictionary<string, string>>
    {
        public override IReadOnlyDictionary<string, string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException($"expected an object of strings, found {reader.TokenType}");
            }

            var pairs = new List<KeyValuePair<string, string>>(1);
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var key = reader.ValueTextEquals(OverlayNetwork.IngressName) ? OverlayNetwork.IngressName : reader.GetString()!;
                if (!reader.Read() || reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
                {
                    throw new JsonException($"the value of '{key}' must be a string, found {reader.TokenType}");
                }

                if (pairs.Exists(p => string.Equals(p.Key, key, StringComparison.Ordinal)))
                {
                    throw new JsonException($"the key '{key}' is given twice");
                }

                pairs.Add(new(key, reader.GetString()!)); // null stays null, as a dictionary read it: the object rules refuse it
            }

            return pairs.Count == 0 ? Empty : new StringMap([.. pairs]);
        }

        public override void Write(Utf8JsonWriter writer, IReadOnlyDictionary<string, string> value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            foreach (var (key, text) in value)
            {
                writer.WriteString(options.DictionaryKeyPolicy?.ConvertName(key) ?? key, text);
            }

            writer.WriteEndObject();
        }
    }
}
