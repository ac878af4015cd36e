using System.Collections.Concurrent;

namespace Mesh.Discovery.Dns;

/// <summary>
/// Lets a recurring event be logged at most once per key per interval and counts the occurrences it holds back, so
/// the next line can say how many there were. Built for failures (e.g. an upstream DNS server that is down, which
/// would otherwise write one warning per client query): a dead upstream under 1,000 q/s is one line per interval,
/// while a metric counts every occurrence. An instance is shared by whoever should share the budget (every task's
/// resolver on a node shares one). Thread-safe.
/// </summary>
public sealed class LogRateLimiter
{
    /// <summary>Keys beyond this many share one window: the budget stays bounded whatever the keys are.</summary>
    internal const int MaxKeys = 1024;
    private const string OverflowKey = "\0overflow";

    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Window> _windows = new(StringComparer.Ordinal);

    public LogRateLimiter(TimeSpan interval, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.Zero);
        Interval = interval;
        _time = time ?? TimeProvider.System;
    }

    public TimeSpan Interval { get; }

    /// <summary>
    /// Records one occurrence of <paramref name="key"/>. True when it should be logged now; then
    /// <paramref name="suppressed"/> is how many occurrences were held back since the last logged one.
    /// </summary>
    public bool ShouldLog(string key, out long suppressed)
    {
        if (!_windows.TryGetValue(key, out var window))
        {
            window = _windows.Count < MaxKeys ? _windows.GetOrAdd(key, _ => new Window()) : _windows.GetOrAdd(OverflowKey, _ => new Window());
        }
        long now = _time.GetTimestamp();
        lock (window)
        {
            if (window.HasLogged && _time.GetElapsedTime(window.LastLogged, now) < Interval)
            {
                window.Suppressed++;
                suppressed = 0;
                return false;
            }
            suppressed = window.Suppressed;
            window.Suppressed = 0;
            window.LastLogged = now;
            window.HasLogged = true;
            return true;
        }
    }

    private sealed class Window
    {
        public bool HasLogged;
        public long LastLogged;
        public long Suppressed;
    }
}
