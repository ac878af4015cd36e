using System.Diagnostics;
using System.Text;

namespace Mesh.Ipvs.KernelTests;

/// <summary>Fails a kernel test.</summary>
public sealed class CheckFailedException(string message) : Exception(message);

public static class Check
{
    public static void True(bool condition, string what)
    {
        if (!condition) throw new CheckFailedException(what);
    }

    public static void Equal<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            throw new CheckFailedException($"{what}: expected <{expected}>, got <{actual}>");
    }

    public static TException Throws<TException>(Action action, string what) where TException : Exception
    {
        try
        {
            action();
        }
        catch (TException e)
        {
            return e;
        }
        catch (Exception e)
        {
            throw new CheckFailedException($"{what}: expected {typeof(TException).Name}, got {e.GetType().Name}: {e.Message}");
        }
        throw new CheckFailedException($"{what}: expected {typeof(TException).Name}, nothing was thrown");
    }

    /// <summary>Every expected line (whitespace-normalised) appears in <paramref name="text"/>.</summary>
    public static void ContainsLines(string text, string what, params string[] lines)
    {
        var have = Normalize(text).Split('\n').ToHashSet();
        foreach (var l in lines)
        {
            if (!have.Contains(Normalize(l)))
                throw new CheckFailedException($"{what}: line <{Normalize(l)}> not found in:\n{text}");
        }
    }

    public static string Normalize(string s) =>
        string.Join('\n', s.Replace("\r", "").Split('\n').Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))));
}

/// <summary>A fresh network namespace (/run/netns/NAME) for one test; deleted on dispose.</summary>
public sealed class TestNamespace : IDisposable
{
    private static int _counter;

    public TestNamespace(string prefix = "mkt")
    {
        Name = $"{prefix}{Interlocked.Increment(ref _counter)}-{Environment.ProcessId}";
        Shell.Run("ip", "netns", "add", Name);
        Path = "/run/netns/" + Name;
        // The kernel refuses IPv4 destinations whose address is not RTN_UNICAST/RTN_LOCAL in the service's
        // namespace (ip_vs_ctl.c, inet_addr_type) — a bare namespace has no routes at all, so give it lo and a
        // dummy link on 10.0.0.0/8, as a real ingress sandbox has its overlay routes.
        Shell.Run(["ip", "-n", Name, "-batch", "-"], "link set lo up\nlink add mesh0 type dummy\nlink set mesh0 up\naddr add 10.254.254.254/8 dev mesh0\n");
    }

    public string Name { get; }
    public string Path { get; }

    /// <summary>ipvsadm (Debian's, an independent client) inside this namespace.</summary>
    public string Ipvsadm(params string[] args) => Shell.Run(["ip", "netns", "exec", Name, "ipvsadm", .. args]);

    /// <summary>/proc/net/ip_vs as seen from inside the namespace (read on a thread that setns()'d there).</summary>
    public string ProcNetIpVs() => NetworkNamespace.Run(Path, () => File.ReadAllText("/proc/thread-self/net/ip_vs"));

    public void Dispose()
    {
        try { Shell.Run("ip", "netns", "del", Name); } catch { /* best effort */ }
    }
}

public static class Shell
{
    public static string Run(params string[] argv) => Run(argv, stdin: null);

    public static string Run(string[] argv, string? stdin, bool check = true)
    {
        var psi = new ProcessStartInfo(argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {argv[0]}");
        var errTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string err = errTask.Result;
        if (check && p.ExitCode != 0)
            throw new CheckFailedException($"`{string.Join(' ', argv)}` exited {p.ExitCode}: {err}{output}");
        return output + (err.Length > 0 && !check ? err : "");
    }
}

public static class Runner
{
    public static int RunAll(IReadOnlyList<(string Name, Action Body)> tests, string? filter)
    {
        int passed = 0, failed = 0;
        var failures = new StringBuilder();
        foreach (var (name, body) in tests)
        {
            if (filter is not null && !name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            var sw = Stopwatch.StartNew();
            try
            {
                body();
                passed++;
                Console.WriteLine($"PASS {name} ({sw.ElapsedMilliseconds} ms)");
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"FAIL {name} ({sw.ElapsedMilliseconds} ms): {e.GetType().Name}: {e.Message}");
                failures.AppendLine($"--- {name}\n{e}");
            }
        }
        if (failed > 0)
        {
            Console.WriteLine();
            Console.WriteLine("Failure details:");
            Console.Write(failures);
        }
        Console.WriteLine($"{passed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }
}
