using System.Diagnostics;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Daemon;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Tests.Daemon;

public sealed class FileLoggerProviderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-log-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Writing_past_the_size_rotates_into_numbered_files_and_the_total_stays_bounded()
    {
        const long Max = 64 * 1024;
        var path = Path.Combine(_dir, "mesh.log");
        using (var provider = new FileLoggerProvider(path, Max, keep: 3))
        {
            var log = provider.CreateLogger("Test");
            // ≈ 1.3 MB: dozens of rotations. Fewer lines than the queue holds, so none is dropped however slowly the
            // writer thread gets the CPU (20,000 lines once lost the last ones on a loaded machine: by design).
            Assert.True(10_000 < FileLoggerProvider.QueueCapacity);
            for (int i = 0; i < 10_000; i++)
            {
                log.LogInformation("line {Index:D6} {Padding}", i, new string('x', 60));
            }
        } // Dispose writes what is queued

        var files = Directory.GetFiles(_dir).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["mesh.log", "mesh.log.1", "mesh.log.2", "mesh.log.3"], files);
        foreach (var f in files)
        {
            Assert.InRange(new FileInfo(Path.Combine(_dir, f)).Length, 1, Max);
        }

        Assert.InRange(files.Sum(f => new FileInfo(Path.Combine(_dir, f)).Length), 3 * Max - 1024, 4 * Max);
        // Newest in mesh.log, continuing where mesh.log.1 stops; nothing lost across a rotation.
        var current = File.ReadAllLines(path);
        var previous = File.ReadAllLines(path + ".1");
        Assert.Contains("line 009999 ", current[^1]);
        int lastOfPrevious = int.Parse(previous[^1].Split("line ")[1][..6], System.Globalization.CultureInfo.InvariantCulture);
        int firstOfCurrent = int.Parse(current[0].Split("line ")[1][..6], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(lastOfPrevious + 1, firstOfCurrent);
    }

    [Fact]
    public void An_existing_file_is_appended_to_and_counted_toward_the_size()
    {
        var path = Path.Combine(_dir, "mesh.log");
        File.WriteAllText(path, new string('o', 60 * 1024) + "\n");
        using (var provider = new FileLoggerProvider(path, 64 * 1024))
        {
            var log = provider.CreateLogger("Test");
            for (int i = 0; i < 100; i++)
            {
                log.LogWarning("after restart {Index} {Padding}", i, new string('y', 80));
            }
        }

        Assert.StartsWith("ooo", File.ReadAllText(path + ".1"));
        Assert.Contains("after restart 99 ", File.ReadAllText(path));
    }

    [Fact]
    public void A_log_file_that_never_takes_writes_does_not_block_the_callers()
    {
        // A FIFO nobody reads: opening it for writing blocks until a reader comes, as a hung disk would.
        var path = Path.Combine(_dir, "stuck.log");
        var mkfifo = Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);

        var provider = new FileLoggerProvider(path, 64 * 1024);
        var log = provider.CreateLogger("Test");
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < FileLoggerProvider.QueueCapacity * 2; i++)
        {
            log.LogInformation("line {Index}", i);
        }

        sw.Stop();
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"logging took {sw.Elapsed}");
        Assert.True(provider.Dropped >= FileLoggerProvider.QueueCapacity - 1, $"dropped {provider.Dropped}");

        // Let the writer through (open a reader), then it drains and stops.
        using var reader = new FileStream(path, FileMode.Open, FileAccess.Read);
        var drain = Task.Run(() => reader.CopyTo(Stream.Null));
        provider.Dispose();
        Assert.True(drain.Wait(TimeSpan.FromSeconds(30)), "the writer did not finish after a reader came");
    }

    [Theory]
    [InlineData("10MiB", 10L << 20)]
    [InlineData("10M", 10L << 20)]
    [InlineData("512K", 512L << 10)]
    [InlineData("1 GiB", 1L << 30)]
    [InlineData("1048576", 1048576)]
    [InlineData("0", 0)]
    public void Log_max_size_accepts_bytes_and_binary_suffixes(string text, long bytes) =>
        Assert.Equal(bytes, DaemonCommand.ParseSize("--log-max-size", text));

    [Theory]
    [InlineData("ten")]
    [InlineData("-1")]
    [InlineData("1K")]
    [InlineData("10TB")]
    public void Log_max_size_rejects_what_is_not_a_sane_size_naming_the_option(string text) =>
        Assert.Contains("--log-max-size", Assert.Throws<ArgumentException>(() => DaemonCommand.ParseSize("--log-max-size", text)).Message);
}
