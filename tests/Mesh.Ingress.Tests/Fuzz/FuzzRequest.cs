using System.Text;

namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>
/// One fuzzed request. <see cref="Raw"/> requests are whole HTTP/1.1 messages written to the socket byte for
/// byte (broken framing, odd request lines); the others go through HttpClient with the path sent verbatim.
/// </summary>
internal sealed record FuzzRequest(string Method, string Path, string? ContentType, byte[]? Body, string Mutation)
{
    public byte[]? Raw { get; init; }

    /// <summary>Long polls (<c>/v1/watch</c>) may legitimately take their own timeout; everything else must answer in 1 s.</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(5); // a hang, not a slow moment of a loaded machine (945 ms seen): speed is the p99 the run prints

    /// <summary>What to print on failure: enough to replay the request by hand (curl --unix-socket) or by seed.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        text.Append(Raw is null ? $"{Method} {Show(Path, 300)}" : $"RAW {Show(Encoding.UTF8.GetString(Raw), 1500)}");
        text.Append($"  [{Mutation}]");
        if (ContentType is not null)
        {
            text.Append($"\n    Content-Type: {Show(ContentType, 200)}");
        }

        if (Body is not null)
        {
            text.Append($"\n    body ({Body.Length} bytes): {Show(Encoding.UTF8.GetString(Body), 1500)}");
        }

        return text.ToString();
    }

    /// <summary>Bounded, with control characters escaped, so a failure message is one readable block.</summary>
    public static string Show(string s, int max)
    {
        var cut = s.Length > max ? s[..max] + $"…(+{s.Length - max} chars)" : s;
        var text = new StringBuilder(cut.Length);
        foreach (var c in cut)
        {
            text.Append(char.IsControl(c) || char.IsSurrogate(c) ? $"\\u{(int)c:x4}" : c.ToString());
        }

        return text.ToString();
    }
}

/// <summary>What came back: status 0 when the server closed the connection without answering (broken framing).</summary>
internal sealed record FuzzResponse(int Status, string? ContentType, string Body, TimeSpan Elapsed);
