using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// What may be kept and served (<c>GET /v1/info</c>, <c>mesh lab status</c>) about a failure: for a kernel tool, its
/// command line and exit code only (a tool's output can echo what it read: nft prints the lines of an
/// <c>include</c>d file in its error); for anything else the first line of the message. Bounded, with control
/// characters replaced. The full text goes to the node's log only.
/// </summary>
public static class ErrorSummary
{
    public const int MaxLength = 300;

    public static string Of(Exception exception) => Bound(exception switch
    {
        CommandFailedException failed => failed.Summary,
        _ => exception.Message.Split('\n', 2)[0],
    });

    /// <summary>One line per failing task, as many as fit.</summary>
    public static string? OfTasks(IReadOnlyDictionary<string, string> errors)
    {
        if (errors.Count == 0)
        {
            return null;
        }

        // A namespace's failure names its task already (NamespaceConvergeException); a refusal by the guard does not.
        var first = errors.First();
        var text = first.Value.StartsWith($"task {first.Key} ", StringComparison.Ordinal) ? first.Value : $"task {first.Key}: {first.Value}";
        return errors.Count == 1 ? text : $"{text} (and {errors.Count - 1} more failing tasks: see the node's log)";
    }

    private static string Bound(string text)
    {
        var cut = text.Length > MaxLength ? text[..MaxLength] + "…" : text;
        return new string(cut.Trim().Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
