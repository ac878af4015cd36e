using System.Globalization;

namespace Mesh.Ingress.Trace;

/// <summary>A trace for people: numbered steps (where, the kernel's rule, what it does), the backend set, the verdict.</summary>
public static class TraceText
{
    public static void Write(TextWriter output, TraceResult trace)
    {
        var from = trace.From is null ? "from an external client" : $"from {trace.From}";
        var request = trace.Http is { } http ? $" Host {http.Host} path {http.Path}" : "";
        var live = trace.Http is null ? "live kernel state" : "live kernel state and the running L7 entry's YARP state";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{trace.Protocol} {trace.Address}:{trace.Port}{request} {from}, on {trace.Node} ({trace.Dataplane} dataplane, {live})"));
        var n = 0;
        foreach (var step in trace.Steps)
        {
            WriteStep(output, "", (++n).ToString(CultureInfo.InvariantCulture) + ".", step);
        }

        if (trace.Backends is { } set)
        {
            output.WriteLine();
            var key = trace.Http?.Cluster is null ? "mark" : "cluster";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"service {set.Service} ({key} {set.Mark}): {set.Candidates.Count} candidate(s), {set.Selection}"));
            foreach (var b in set.Candidates)
            {
                var who = b.Task is null ? "(no task in the store)" : $"{b.Task} on {b.Node}";
                var slots = set.Candidates.Sum(c => c.Weight);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  [{b.Index}] {b.Address}:{b.Port}  weight {b.Weight}/{slots}  {who}  health: {b.Health ?? "not checked (no health checks yet)"}"));
                if (b.TaskSide is { } side)
                {
                    foreach (var step in side)
                    {
                        WriteStep(output, "      ", "", step);
                    }
                }
                else if (b.FollowUp is { } follow)
                {
                    output.WriteLine($"      far side: on {b.Node}, ask its daemon: {follow}");
                }
            }
        }

        output.WriteLine();
        output.WriteLine($"verdict: {Verdict(trace.Verdict)} — {trace.Reason}");
        foreach (var note in trace.Notes)
        {
            output.WriteLine($"note: {note}");
        }
    }

    public static string Verdict(TraceVerdict verdict) => verdict switch
    {
        TraceVerdict.NotMesh => "not_mesh",
        TraceVerdict.NotFound => "not_found",
        _ => verdict.ToString().ToLowerInvariant(),
    };

    private static void WriteStep(TextWriter output, string indent, string label, TraceStep step)
    {
        var table = step.Table.Length == 0 ? "" : $" · {step.Table}{(step.Chain.Length == 0 ? "" : " " + step.Chain)}";
        var body = indent + new string(' ', label.Length == 0 ? 2 : 6);
        output.WriteLine(label.Length == 0 ? $"{indent}{step.Namespace}{table}" : $"{indent}{label,-4}{step.Namespace}{table}");
        if (step.Rule is not null)
        {
            output.WriteLine($"{body}{step.Rule}");
        }

        output.WriteLine($"{body}→ {step.Result}");
    }
}
