using System.Diagnostics;
using System.Globalization;

namespace Mesh.LoadTests.Core;

/// <summary>
/// A live progress line on stderr: rewritten in place about once a second on a terminal, or one
/// plain line every <c>interval</c> when stderr is redirected (CI logs).
/// </summary>
public sealed class ProgressLine : IAsyncDisposable
{
    private readonly LoadRunner _runner;
    private readonly TextWriter _out;
    private readonly bool _tty;
    private readonly TimeSpan _interval;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;
    private int _lastLength;

    public ProgressLine(LoadRunner runner, TextWriter output, bool tty, TimeSpan interval)
    {
        _runner = runner;
        _out = output;
        _tty = tty;
        _interval = tty ? TimeSpan.FromSeconds(1) : interval;
        _loop = _interval > TimeSpan.Zero ? Loop() : Task.CompletedTask;
    }

    public static ProgressLine? Start(LoadRunner runner, bool quiet, TimeSpan interval) =>
        quiet ? null : new ProgressLine(runner, Console.Error, !Console.IsErrorRedirected, interval);

    private async Task Loop()
    {
        LiveView? view = null;
        long lastCount = 0, lastTime = 0;
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                await Task.Delay(_interval, _cts.Token).ConfigureAwait(false);
                var live = _runner.Live;
                if (live is null) continue;
                long now = Stopwatch.GetTimestamp();
                bool measuring = now >= live.MeasureStart;
                var sink = measuring ? live.Measured : live.Warmup;
                long count = sink.Completed;
                if (!ReferenceEquals(view, live) || lastTime == 0) { view = live; lastCount = 0; lastTime = measuring ? live.MeasureStart : live.Start; }
                if (count < lastCount) { lastCount = 0; lastTime = live.MeasureStart; }
                double dt = (now - lastTime) / (double)Stopwatch.Frequency;
                double rate = dt > 0 ? (count - lastCount) / dt : 0;
                lastCount = count;
                lastTime = now;
                double elapsed = (now - (measuring ? live.MeasureStart : live.Start)) / (double)Stopwatch.Frequency;
                var line = string.Create(CultureInfo.InvariantCulture,
                    $"[{live.Label}] {(measuring ? "measuring" : "warm-up  ")} {elapsed,6:0.0}s  {count,9} done  {rate,9:0}/s  failed {sink.FailedApprox}  in flight {live.InFlight()}");
                if (_tty)
                {
                    _out.Write("\r" + line.PadRight(_lastLength));
                    _lastLength = line.Length;
                }
                else
                {
                    _out.WriteLine(line);
                }
                await _out.FlushAsync(_cts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        if (_tty && _lastLength > 0) await _out.WriteAsync("\r" + new string(' ', _lastLength) + "\r").ConfigureAwait(false);
        _cts.Dispose();
    }
}
