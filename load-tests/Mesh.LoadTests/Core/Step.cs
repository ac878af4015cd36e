using Mesh.LoadTests.Metrics;

namespace Mesh.LoadTests.Core;

/// <summary>
/// A kind of request (HTTP GET, TCP connect, UDP exchange, DNS query) against one target.
/// The factory holds shared state (an HttpClient, a resolved endpoint); instances hold
/// per-worker state (a UDP socket) and are never used by two requests at once.
/// </summary>
public interface IStepFactory : IAsyncDisposable
{
    /// <summary>Short step name, e.g. "http-get".</summary>
    string Name { get; }
    /// <summary>Human-readable target, e.g. the URL.</summary>
    string Target { get; }
    IStepInstance CreateInstance(int index);
}

public interface IStepInstance : IDisposable
{
    /// <summary>Runs one request. Implementations report failures as results rather than throwing.</summary>
    ValueTask<StepResult> ExecuteAsync(CancellationToken cancellationToken);
}

/// <summary>A scenario variant: a named sequence of steps run as one iteration.</summary>
public sealed class ScenarioDefinition(string name, IReadOnlyList<IStepFactory> steps) : IAsyncDisposable
{
    public ScenarioDefinition(string name, IStepFactory step) : this(name, [step]) { }

    public string Name { get; } = name;
    public IReadOnlyList<IStepFactory> Steps { get; } = steps.Count > 0 ? steps : throw new ArgumentException("a scenario needs a step", nameof(steps));
    public string Target => string.Join(" → ", Steps.Select(s => s.Target));

    public async ValueTask DisposeAsync()
    {
        foreach (var s in Steps) await s.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>One worker's instances of every step of a scenario, run in order as one iteration.</summary>
internal sealed class ScenarioInstance : IDisposable
{
    private readonly IStepInstance[] _steps;
    private readonly string[] _names;

    public ScenarioInstance(ScenarioDefinition scenario, int index)
    {
        _steps = scenario.Steps.Select(s => s.CreateInstance(index)).ToArray();
        _names = scenario.Steps.Select(s => s.Name).ToArray();
    }

    public async ValueTask<StepResult> ExecuteAsync(CancellationToken ct)
    {
        StepResult last = default;
        long bytes = 0;
        for (int i = 0; i < _steps.Length; i++)
        {
            try
            {
                last = await _steps[i].ExecuteAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                last = StepResult.Failure(ErrorKinds.Classify(e));
            }
            bytes += last.Bytes;
            if (!last.Ok)
            {
                // name the failing step when a scenario has several
                if (_steps.Length > 1)
                    last = last with { Status = last.Status is null ? null : $"{_names[i]}:{last.Status}", Error = last.Error is null ? null : $"{_names[i]}:{last.Error}" };
                return last with { Bytes = bytes };
            }
        }
        return last with { Bytes = bytes };
    }

    public void Dispose()
    {
        foreach (var s in _steps) s.Dispose();
    }
}
