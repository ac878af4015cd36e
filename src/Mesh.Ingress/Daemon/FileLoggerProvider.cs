using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// Plain-text log lines to a file, for daemons started in the background (the lab's), rotated by size:
/// when the file would pass <c>maxSize</c> bytes it becomes <c>PATH.1</c> (<c>PATH.1</c> becomes <c>PATH.2</c>, …) and
/// a new file is started; <c>keep</c> old files are kept, so the log never takes more than about (keep + 1) × maxSize.
/// A log call only formats the line and queues it: one background thread writes, flushes and rotates, so a slow or
/// stuck disk never holds up the caller (the DNS receive loop logs from its own thread). When the queue is full, lines
/// are dropped and the next line written says how many.
/// </summary>
public sealed class FileLoggerProvider : ILoggerProvider
{
    public const long DefaultMaxSize = 10 * 1024 * 1024;
    public const int DefaultKeep = 3;
    /// <summary>Lines waiting for the writer before new ones are dropped (a few MB at typical line lengths).</summary>
    internal const int QueueCapacity = 16_384;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly string _path;
    private readonly long _maxSize;
    private readonly int _keep;
    private readonly BlockingCollection<string> _queue = new(new ConcurrentQueue<string>(), QueueCapacity);
    private readonly Thread _writerThread;
    private long _dropped;

    /// <param name="path">The log file; opened for appending.</param>
    /// <param name="maxSize">Rotate when the file would grow past this many bytes; 0: never rotate.</param>
    /// <param name="keep">How many rotated files (<c>PATH.1</c> … <c>PATH.keep</c>) to keep.</param>
    public FileLoggerProvider(string path, long maxSize = DefaultMaxSize, int keep = DefaultKeep)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        _path = Path.GetFullPath(path);
        _maxSize = maxSize;
        _keep = keep;
        _writerThread = new Thread(WriteLoop) { IsBackground = true, Name = "mesh-log-writer" };
        _writerThread.Start();
    }

    /// <summary>Lines dropped so far because the writer could not keep up.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public ILogger CreateLogger(string categoryName) => new FileLogger(this, categoryName);

    /// <summary>Writes what is queued (waiting at most a few seconds for a stuck disk) and closes the file.</summary>
    public void Dispose()
    {
        if (_queue.IsAddingCompleted) return;
        _queue.CompleteAdding();
        _writerThread.Join(TimeSpan.FromSeconds(5));
    }

    private void Enqueue(string line)
    {
        try
        {
            if (!_queue.TryAdd(line)) Interlocked.Increment(ref _dropped);
        }
        catch (InvalidOperationException)
        {
            // Disposed: the host is shutting down; nothing left to write to.
        }
    }

    private void WriteLoop()
    {
        FileStream? file = null;
        long size = 0;
        long reportedDropped = 0;
        try
        {
            while (!_queue.IsCompleted)
            {
                string line;
                try
                {
                    line = _queue.Take();
                }
                catch (InvalidOperationException)
                {
                    break; // completed while waiting
                }

                if (file is null)
                {
                    // Opened here, not in the constructor: even opening (a FIFO, a hung NFS mount) must not block a caller.
                    file = Open(out size);
                }

                long dropped = Interlocked.Read(ref _dropped);
                if (dropped != reportedDropped)
                {
                    var note = string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.UtcNow:O} Warning     {typeof(FileLoggerProvider).FullName}: {dropped - reportedDropped} log line(s) dropped: the log file could not keep up");
                    reportedDropped = dropped;
                    Write(ref file, ref size, note);
                }

                Write(ref file, ref size, line);
                if (_queue.Count == 0)
                {
                    file.Flush();
                }
            }
        }
        catch (Exception e)
        {
            // Logging must never take the daemon down. Nowhere left to log to: say so on stderr (where the daemon's
            // output goes when started in the background); later lines are dropped.
            Console.Error.WriteLine($"mesh: log file {_path}: {e.Message}; logging stopped");
        }
        finally
        {
            file?.Dispose();
        }
    }

    private void Write(ref FileStream file, ref long size, string line)
    {
        int bytes = Utf8.GetByteCount(line) + 1;
        // A FIFO or a device (/dev/stderr) is not a file that grows: never rotated.
        if (_maxSize > 0 && size > 0 && size + bytes > _maxSize && file.CanSeek)
        {
            file = Rotate(file, ref size);
        }

        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            int n = Utf8.GetBytes(line, buffer);
            buffer[n] = (byte)'\n';
            file.Write(buffer, 0, n + 1);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        size += bytes;
    }

    private FileStream Open(out long size)
    {
        var file = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 64 * 1024);
        size = file.CanSeek ? file.Length : 0;
        return file;
    }

    /// <summary>PATH.(keep-1) → PATH.keep, …, PATH → PATH.1, then a fresh PATH. On failure the current file goes on.</summary>
    private FileStream Rotate(FileStream file, ref long size)
    {
        file.Flush();
        try
        {
            for (int i = _keep - 1; i >= 1; i--)
            {
                var from = $"{_path}.{i.ToString(CultureInfo.InvariantCulture)}";
                if (File.Exists(from))
                {
                    File.Move(from, $"{_path}.{(i + 1).ToString(CultureInfo.InvariantCulture)}", overwrite: true);
                }
            }

            File.Move(_path, $"{_path}.1", overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Keep appending; try again after another maxSize bytes rather than on every line.
            Console.Error.WriteLine($"mesh: rotating log file {_path}: {e.Message}");
            size = 0;
            return file;
        }

        file.Dispose();
        return Open(out size);
    }

    private sealed class FileLogger(FileLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        /// <summary>The logging configuration's rules decide (Information by default; <c>Logging__LogLevel__&lt;category&gt;</c>
        /// in the environment lowers it for one category, e.g. the reconciler's per-pass Debug timings).</summary>
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var line = string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.UtcNow:O} {logLevel,-11} {category}: {formatter(state, exception)}");
            owner.Enqueue(exception is null ? line : line + Environment.NewLine + exception);
        }
    }
}
