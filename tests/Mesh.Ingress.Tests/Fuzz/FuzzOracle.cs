using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>
/// Judges one request from its answer and the state before and after it. Deliberately about invariants, not
/// today's exact answers: stricter validation (more 400s) never fails it; a 5xx, a malformed answer, a state
/// change after a non-2xx, a 2xx that changed something other than the one object it names, or an invalid object does.
/// </summary>
internal static class FuzzOracle
{
    /// <summary>Statuses a well-behaved API may give fuzzed input (0: the server closed a malformed raw request).</summary>
    private static readonly HashSet<int> Expected = [0, 200, 201, 204, 400, 401, 403, 404, 405, 409, 411, 413, 414, 415, 422, 431, 505];

    public static string? Judge(FuzzRequest request, FuzzResponse response, Snapshot before, Snapshot after)
    {
        if (!Expected.Contains(response.Status))
        {
            return response.Status == 503
                ? Error(response) is { Error.Length: > 0 } ? null : "503 without a JSON error saying why"
                : $"unexpected status {response.Status}";
        }

        if (response.Elapsed > request.Deadline)
        {
            return $"took {response.Elapsed.TotalMilliseconds:F0} ms (limit {request.Deadline.TotalMilliseconds:F0} ms)";
        }

        if (response.Status >= 400 && response.ContentType == "application/json" && request.Method != "HEAD") // HEAD: headers only
        {
            var error = Error(response);
            if (error is not { Error.Length: > 0 })
            {
                return "JSON error body is not an ApiError with a message";
            }

            if (response.Status == 400 && string.IsNullOrEmpty(error.Field))
            {
                return "400 whose error names no field";
            }

            if (error.Error.Any(c => char.IsControl(c)) || (error.Field ?? "").Any(c => char.IsControl(c)))
            {
                return "error message carries raw control characters";
            }
        }

        var changed = !string.Equals(before.Json, after.Json, StringComparison.Ordinal);
        if (response.Status is < 200 or > 299)
        {
            return changed ? $"state changed after {response.Status}: {Diff.Between(before.State, after.State)}" : null;
        }

        if (!changed)
        {
            return null; // reads, and writes that were no-ops (a node re-registering unchanged)
        }

        if (after.State.Revision <= before.State.Revision)
        {
            return $"state changed but revision went {before.State.Revision} → {after.State.Revision}";
        }

        var diff = Diff.Between(before.State, after.State);
        return request.Method.ToUpperInvariant() switch // ASP.NET routes "post" as POST
        {
            "DELETE" => JudgeDelete(request, diff),
            "POST" or "RAW" => JudgeCreate(response, diff, after.State),
            _ => $"{request.Method} {response.Status} changed the state: {diff}",
        };
    }

    /// <summary>A delete removes one service (with its tasks) or one task, named (case-insensitively) by the last URL segment.</summary>
    private static string? JudgeDelete(FuzzRequest request, Diff diff)
    {
        var last = Uri.UnescapeDataString(request.Path.Split('?')[0].TrimEnd('/').Split('/')[^1]);
        if (diff.Added.Count != 0 || diff.Updated.Count != 0 || diff.Removed.Count == 0)
        {
            return $"a delete that did more than remove: {diff}";
        }

        var named = diff.Removed.Where(r => string.Equals(r.Name, last, StringComparison.OrdinalIgnoreCase)).ToList();
        if (named.Count != 1)
        {
            return $"a delete of '{last}' removed {diff}";
        }

        var rest = diff.Removed.Except(named).ToList();
        return named[0].Kind == "service" && rest.All(r => r.Kind == "task" && string.Equals(r.Owner, named[0].Name, StringComparison.Ordinal))
            || (named[0].Kind == "task" && rest.Count == 0)
            ? null
            : $"a delete of '{last}' also removed {string.Join(", ", rest)}";
    }

    /// <summary>A create adds (a node registration may update) exactly one object, the one the answer shows.</summary>
    private static string? JudgeCreate(FuzzResponse response, Diff diff, ClusterState after)
    {
        var touched = diff.Added.Concat(diff.Updated).ToList();
        if (diff.Removed.Count != 0 || touched.Count != 1 || (diff.Updated.Count == 1 && touched[0].Kind != "node"))
        {
            return $"a create changed more than one object: {diff}";
        }

        var one = touched[0];
        var inState = one.Kind switch
        {
            "network" => (object?)after.Networks.FirstOrDefault(n => n.Name == one.Name),
            "node" => after.Nodes.FirstOrDefault(n => n.Name == one.Name),
            "service" => after.Services.FirstOrDefault(s => s.Name == one.Name),
            _ => after.Tasks.FirstOrDefault(t => t.Name == one.Name),
        };
        var shown = JsonSerializer.Serialize(inState, inState!.GetType(), MeshJson.Options);
        return Canonical(response.Body) == Canonical(shown) ? null : $"answered {FuzzRequest.Show(response.Body, 500)} but stored {shown}";
    }

    private static string? Canonical(string json)
    {
        try
        {
            return JsonSerializer.Serialize(JsonDocument.Parse(json).RootElement);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static ApiError? Error(FuzzResponse response)
    {
        try
        {
            return JsonSerializer.Deserialize<ApiError>(response.Body, MeshJson.Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>A state as read back: its exact JSON (compared byte for byte) and its decoded form.</summary>
internal sealed record Snapshot(string Json, ClusterState State)
{
    public static Snapshot Parse(string json) =>
        new(json, JsonSerializer.Deserialize<ClusterState>(json, MeshJson.Options) ?? throw new InvalidDataException("state is null"));
}

internal sealed record ObjectRef(string Kind, string Name, string? Owner)
{
    public override string ToString() => $"{Kind} '{Name}'";
}

/// <summary>Which objects were added, removed or changed between two states (keyed by kind and name).</summary>
internal sealed record Diff(List<ObjectRef> Added, List<ObjectRef> Removed, List<ObjectRef> Updated)
{
    public static Diff Between(ClusterState before, ClusterState after)
    {
        var a = Objects(before);
        var b = Objects(after);
        return new Diff(
            b.Keys.Where(k => !a.ContainsKey(k)).ToList(),
            a.Keys.Where(k => !b.ContainsKey(k)).ToList(),
            b.Keys.Where(k => a.TryGetValue(k, out var old) && old != b[k]).ToList());
    }

    private static Dictionary<ObjectRef, string> Objects(ClusterState s)
    {
        string J<T>(T o) => JsonSerializer.Serialize(o, MeshJson.Options);
        var all = new Dictionary<ObjectRef, string>();
        foreach (var n in s.Networks)
        {
            all[new("network", n.Name, null)] = J(n);
        }

        foreach (var n in s.Nodes)
        {
            all[new("node", n.Name, null)] = J(n);
        }

        foreach (var x in s.Services)
        {
            all[new("service", x.Name, null)] = J(x);
        }

        foreach (var t in s.Tasks)
        {
            all[new("task", t.Name, t.Service)] = J(t);
        }

        return all;
    }

    public override string ToString() =>
        $"added [{string.Join(", ", Added)}] removed [{string.Join(", ", Removed)}] updated [{string.Join(", ", Updated)}]";
}
