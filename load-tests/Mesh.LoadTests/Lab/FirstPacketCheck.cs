using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// What one wrk round of <see cref="FirstPacketScenario"/> answered, checked response by response: wrk runs
/// <see cref="Script"/>, which counts every 200 whose body is the backend server's (<c>task ADDRESS</c>, the address
/// the connection was DNATed to) by address, and every other response as wrong; <see cref="Parse"/> reads its lines back.
/// A TCP connect, or a status code alone, would pass a path that answers from the wrong place.
/// </summary>
public sealed partial record FirstPacketCheck(IReadOnlyDictionary<string, long> ByTask, long Wrong)
{
    /// <summary>The line prefix the script writes (one line of wrong answers, one per task address).</summary>
    public const string Prefix = "first-packet-check";

    /// <summary>The backend's body: <c>task ADDRESS\n</c>, nginx's <c>$server_addr</c> (so a task's address, after DNAT).</summary>
    public const string BodyPrefix = "task ";

    /// <summary>
    /// The wrk Lua script. <c>response</c> runs in each wrk thread's own Lua state; <c>done</c> in the main one
    /// reads the threads' counters through the thread handles <c>setup</c> kept.
    /// </summary>
    public const string Script = """
        local threads = {}
        function setup(thread) table.insert(threads, thread) end
        function init(args) tasks = {}; wrong = 0 end
        function response(status, headers, body)
          local task = status == 200 and body:match("^task ([%d.]+)\n$")
          if task then tasks[task] = (tasks[task] or 0) + 1 else wrong = wrong + 1 end
        end
        function done(summary, latency, requests)
          for _, t in ipairs(threads) do
            io.write(string.format("first-packet-check wrong %d\n", t:get("wrong")))
            for task, n in pairs(t:get("tasks")) do io.write(string.format("first-packet-check task %s %d\n", task, n)) end
          end
        end
        """;

    public long Answered => ByTask.Values.Sum();

    /// <summary>The script's lines in wrk's output, summed over threads; null when the script wrote none (wrk failed before <c>done</c>).</summary>
    public static FirstPacketCheck? Parse(string wrkOutput)
    {
        var byTask = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long wrong = 0;
        var seen = false;
        foreach (Match m in Line().Matches(wrkOutput))
        {
            seen = true;
            var n = long.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture);
            if (m.Groups["task"].Success)
            {
                byTask[m.Groups["task"].Value] = byTask.GetValueOrDefault(m.Groups["task"].Value) + n;
            }
            else
            {
                wrong += n;
            }
        }

        return seen ? new FirstPacketCheck(byTask, wrong) : null;
    }

    /// <summary>
    /// What is wrong with the answers, or null: a wrong body, a task address the service does not have, a task never
    /// hit, and for round robin (<paramref name="tolerance"/> set) shares further apart than it allows. Round robin
    /// hands the slots out in strict turn, but a round stops with up to one connection per wrk connection in flight
    /// whose slot was drawn and whose answer is not counted: so the tolerance is the connections + 1.
    /// </summary>
    public string? Problem(IReadOnlyCollection<string> tasks, long? tolerance)
    {
        if (Wrong > 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{Wrong} responses were not 200 with the body 'task ADDRESS'");
        }

        var strangers = ByTask.Keys.Where(k => !tasks.Contains(k)).ToList();
        if (strangers.Count > 0)
        {
            return $"answers from addresses that are not the target's tasks: {string.Join(", ", strangers)}";
        }

        var missing = tasks.Where(t => ByTask.GetValueOrDefault(t) == 0).ToList();
        if (missing.Count > 0)
        {
            return $"tasks never hit: {string.Join(", ", missing)}";
        }

        var (min, max) = (ByTask.Values.Min(), ByTask.Values.Max());
        return tolerance is { } t && max - min > t
            ? string.Create(CultureInfo.InvariantCulture, $"round robin shares {min}..{max} per task differ by more than {t}")
            : null;
    }

    [GeneratedRegex(@"^first-packet-check (?:task (?<task>[\d.]+)|wrong) (?<n>\d+)$", RegexOptions.Multiline)]
    private static partial Regex Line();
}
