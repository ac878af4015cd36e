using System.CommandLine;
using System.Diagnostics;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Daemon;

namespace Mesh.Ingress.Tests.Packaging;

/// <summary>packaging/mesh.service and the example packaging/mesh.json, checked by the tools that will read them.</summary>
public sealed class ServiceUnitTests
{
    private static readonly string Packaging = Path.Combine(Checkout.Root, "packaging");

    [Fact]
    public void The_unit_is_a_notify_service_with_watchdog_restart_and_only_two_capabilities()
    {
        var lines = File.ReadAllLines(Path.Combine(Packaging, "mesh.service")).Where(l => l.Length > 0 && l[0] != '#').ToList();
        foreach (var expected in (string[])
        [
            "Type=notify", "NotifyAccess=main", "Restart=always", "ExecStart=/usr/local/bin/mesh daemon --config /etc/mesh/mesh.json",
            "CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN", "NoNewPrivileges=yes",
        ])
        {
            Assert.Contains(expected, lines);
        }

        Assert.Contains(lines, l => l.StartsWith("WatchdogSec=", StringComparison.Ordinal));

        // A mount namespace of its own would hide the sandbox's /run/netns mount from the host (see the unit's comment).
        foreach (var option in (string[])["ProtectSystem=", "ProtectHome=", "PrivateTmp=", "PrivateDevices=", "ProtectKernelTunables=", "ReadWritePaths=", "ProtectProc="])
        {
            Assert.DoesNotContain(lines, l => l.StartsWith(option, StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// systemd's own parser, with every warning an error. verify also checks that ExecStart's binary exists, which
    /// /usr/local/bin/mesh does not on a build machine: the copy verified names the freshly built mesh instead.
    /// </summary>
    [Fact]
    public async Task Systemd_analyze_verify_finds_nothing_to_say()
    {
        const string Analyze = "/usr/bin/systemd-analyze";
        Assert.True(File.Exists(Analyze), $"{Analyze} is missing: install Debian's systemd package (scripts/install-deps.sh test does)");

        var dir = Directory.CreateTempSubdirectory("mesh-unit-").FullName;
        try
        {
            var mesh = Path.Combine(AppContext.BaseDirectory, "mesh");
            var text = await File.ReadAllTextAsync(Path.Combine(Packaging, "mesh.service"));
            Assert.Contains("ExecStart=/usr/local/bin/mesh ", text, StringComparison.Ordinal);
            var unit = Path.Combine(dir, "mesh.service");
            await File.WriteAllTextAsync(unit, text.Replace("ExecStart=/usr/local/bin/mesh ", $"ExecStart={mesh} ", StringComparison.Ordinal));

            var (code, output) = await RunAsync(Analyze, "verify", unit);
            Assert.True(code == 0 && output.Length == 0, $"systemd-analyze verify exited {code}: {output}");

            // And it can fail: an unknown key is reported.
            await File.AppendAllTextAsync(unit, "NoSuchKey=1\n");
            var (_, complaint) = await RunAsync(Analyze, "verify", unit);
            Assert.Contains("NoSuchKey", complaint, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task The_example_config_file_is_valid()
    {
        DaemonOptions? seen = null;
        var root = new RootCommand { DaemonCommand.Build(_ => null, (options, _) => { seen = options; return Task.FromResult(0); }) };
        var code = await root.Parse(["daemon", "--config", Path.Combine(Packaging, "mesh.json")]).InvokeAsync();
        Assert.Equal(0, code);
        Assert.Equal("host-a", seen!.Node);
        Assert.Equal("unix:///run/mesh/mesh.sock", Assert.Single(seen.ApiEndpoints).ToString());
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, (await stdout + await stderr).Trim());
    }

}
