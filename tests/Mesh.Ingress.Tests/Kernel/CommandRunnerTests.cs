using System.Diagnostics;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>Issue 9: every child process has a deadline, and what a failed tool printed never reaches the served error.</summary>
public sealed class CommandRunnerTests
{
    [Fact]
    public async Task A_child_that_hangs_is_killed_after_its_timeout_and_the_error_names_the_command()
    {
        var pidFile = Path.Combine(Path.GetTempPath(), $"mesh-runner-{Guid.NewGuid():N}");
        try
        {
            var runner = new ProcessCommandRunner(TimeSpan.FromMilliseconds(500));
            var clock = Stopwatch.StartNew();

            // A fixed test script (no data in it): records its pid, then becomes a sleep that never ends on its own.
            var e = await Assert.ThrowsAsync<CommandFailedException>(() => runner.RunAsync("sh", ["-c", "echo $$ > \"$0\"; exec sleep 300", pidFile]));

            Assert.True(e.TimedOut);
            Assert.Contains("sleep 300", e.Message, StringComparison.Ordinal);
            Assert.Contains("killed", ErrorSummary.Of(e), StringComparison.Ordinal);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
            var pid = File.ReadAllText(pidFile).Trim();
            Assert.False(Directory.Exists($"/proc/{pid}"), $"pid {pid} still runs");
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    [Fact]
    public async Task A_child_that_never_reads_its_input_is_killed_too()
    {
        var runner = new ProcessCommandRunner(TimeSpan.FromMilliseconds(500));

        // 4 MiB is far more than a pipe holds: before the change, writing it blocked forever.
        var e = await Assert.ThrowsAsync<CommandFailedException>(() => runner.RunAsync("sleep", ["300"], new string('x', 4 << 20)));

        Assert.True(e.TimedOut);
    }

    [Fact]
    public async Task A_quick_child_is_not_affected()
    {
        var result = await new ProcessCommandRunner(TimeSpan.FromSeconds(30)).RunAsync("cat", [], "hello");

        Assert.Equal(new CommandResult(0, "hello", ""), result);
    }

    [LabFact]
    public async Task What_nft_echoes_from_an_included_file_stays_out_of_the_served_error()
    {
        var secret = Path.Combine(Path.GetTempPath(), $"mesh-secret-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(secret, "root:SECRET-HASH-1234:19000:0:99999:7:::\n");
        try
        {
            // unshare -n: nft runs in a fresh, empty network namespace that dies with it.
            var e = await Assert.ThrowsAsync<CommandFailedException>(() =>
                new ProcessCommandRunner().RunCheckedAsync("unshare", ["-n", "nft", "-f", "-"], $"include \"{secret}\"\n"));

            Assert.Contains("SECRET-HASH-1234", e.Message, StringComparison.Ordinal); // nft does echo it (the local log has it)
            var served = ErrorSummary.Of(e);
            Assert.DoesNotContain("SECRET", served, StringComparison.Ordinal);
            Assert.Contains("nft -f -", served, StringComparison.Ordinal);
            Assert.Contains("exited with 1", served, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(secret);
        }
    }
}
