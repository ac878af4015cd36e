using System.Globalization;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// What a process allocated during a trace, from the runtime's AllocationTick events (one per ~100 KB allocated, with
// the type and heap of the object that crossed the mark): summed by type and heap, and by type with the first three
// Mesh frames of its stack. A sample, not a count: the figures are proportional to what was allocated.
// Usage: dotnet-trace collect -p PID --profile gc-verbose --duration 00:00:00:45 -o FILE.nettrace
//        dotnet run --project load-tests/AllocTicks -c Release -- FILE.nettrace
if (args.Length != 1 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("usage: AllocTicks FILE.nettrace (written by dotnet-trace collect --profile gc-verbose)");
    return 2;
}

using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var byType = new Dictionary<string, long>(StringComparer.Ordinal);
var byStack = new Dictionary<string, long>(StringComparer.Ordinal);
long total = 0;
foreach (var e in log.Events)
{
    if (e is not GCAllocationTickTraceData tick)
    {
        continue;
    }

    var heap = tick.AllocationKind switch
    {
        GCAllocationKind.Large => "LOH",
        GCAllocationKind.Pinned => "POH",
        _ => "SOH",
    };
    var type = $"{heap} {tick.TypeName}";
    byType[type] = byType.GetValueOrDefault(type) + tick.AllocationAmount64;
    total += tick.AllocationAmount64;

    var frames = new List<string>();
    for (var frame = e.CallStack(); frame is not null && frames.Count < 3; frame = frame.Caller)
    {
        var method = frame.CodeAddress.FullMethodName;
        if (!string.IsNullOrEmpty(method) && method.Contains("Mesh.", StringComparison.Ordinal))
        {
            frames.Add(method.Length > 110 ? method[..110] : method);
        }
    }

    var stack = $"{type} <- {string.Join(" <- ", frames)}";
    byStack[stack] = byStack.GetValueOrDefault(stack) + tick.AllocationAmount64;
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sampled {total / 1e6:0.0} MB"));
foreach (var (key, bytes) in byType.OrderByDescending(p => p.Value).Take(25))
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6,8:0.0} MB {key}"));
}

Console.WriteLine("-- by the first Mesh frames");
foreach (var (key, bytes) in byStack.OrderByDescending(p => p.Value).Take(40))
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6,8:0.0} MB {key}"));
}

return 0;
