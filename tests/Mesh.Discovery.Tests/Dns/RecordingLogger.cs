using Microsoft.Extensions.Logging;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>Keeps every log line (level, event id, message) for assertions; thread-safe.</summary>
internal sealed class RecordingLogger : ILogger
{
    private readonly List<(LogLevel Level, EventId Id, string Message)> _lines = [];

    public IReadOnlyList<(LogLevel Level, EventId Id, string Message)> Lines
    {
        get { lock (_lines) return _lines.ToArray(); }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel)) return;
        lock (_lines) _lines.Add((logLevel, eventId, formatter(state, exception)));
    }
}
