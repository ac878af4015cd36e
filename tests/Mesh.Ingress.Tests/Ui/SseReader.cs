using System.Text;
using System.Text.Json;

namespace Mesh.Ingress.Tests.Ui;

/// <summary>Reads a server-sent event stream frame by frame, as a browser's EventSource does.</summary>
public sealed class SseReader(Stream stream) : IDisposable
{
    private readonly StreamReader _reader = new(stream, Encoding.UTF8);

    /// <summary>Every line of the stream so far, comments included.</summary>
    public List<string> Lines { get; } = [];

    /// <summary>The next line, comments and blank lines included; fails after <paramref name="timeout"/>.</summary>
    public async Task<string> NextLineAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var line = await _reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException("the event stream ended");
        Lines.Add(line);
        return line;
    }

    /// <summary>The next <c>data:</c> frame as JSON; fails after <paramref name="timeout"/>.</summary>
    public async Task<JsonElement> NextSnapshotAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            var line = await NextLineAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone();
            }
        }
    }

    /// <summary>Snapshots until one satisfies <paramref name="condition"/>; fails after <paramref name="timeout"/>.</summary>
    public async Task<JsonElement> NextSnapshotAsync(Func<JsonElement, bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            var snapshot = await NextSnapshotAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
            if (condition(snapshot))
            {
                return snapshot;
            }
        }
    }

    public void Dispose() => _reader.Dispose();
}
