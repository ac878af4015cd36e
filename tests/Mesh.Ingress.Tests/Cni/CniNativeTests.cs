using System.Collections;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Mesh.Ingress.Cni;

namespace Mesh.Ingress.Tests.Cni;

/// <summary>
/// The native mesh-cni (src/Mesh.Cni, compiled ahead of time and trimmed) answers as the plugin compiled into mesh
/// does: the same exit code, error code and message for every call that needs no daemon. What ahead-of-time
/// compilation can break (trimmed code, reflection, resource strings) shows here, without a lab.
/// </summary>
public sealed class CniNativeTests
{
    private static readonly string NoDaemon = $"unix:///tmp/mesh-cni-test-{Guid.NewGuid():N}.sock";

    private static string Native =>
        CniInstaller.NativePluginBeside(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException($"no native mesh-cni in {AppContext.BaseDirectory}: a Release build puts it beside mesh (src/Mesh.Ingress/Mesh.Ingress.csproj)");

    public static TheoryData<string, string, string> Calls => new()
    {
        { "VERSION", "eth0", "" },
        { "ADD", "eth0", Config("1.0.0") },
        { "DEL", "eth0", Config("1.0.0") },
        { "STATUS", "eth0", Config("1.1.0") },
        { "STATUS", "eth0", Config("1.0.0") },
        { "ADD", "x/y", Config("1.0.0") },
        { "ADD", "eth0", "not json" },
        { "ADD", "eth0", """{"cniVersion":"1.0.0","name":"mesh-web","type":"mesh-cni"}""" },
        { "ADD", "eth0", """{"cniVersion":"9.9.9","name":"mesh-web","type":"mesh-cni","service":"web"}""" },
    };

    private static string Config(string version) =>
        $$"""{"cniVersion":"{{version}}","name":"mesh-web","type":"mesh-cni","service":"web","api":"{{NoDaemon}}"}""";

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task The_native_plugin_answers_as_the_managed_one(string command, string ifname, string stdin)
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = "c0ffee",
            ["CNI_IFNAME"] = ifname,
            ["CNI_NETNS"] = $"/proc/{Environment.ProcessId}/ns/net",
            ["CNI_PATH"] = "/opt/cni/bin",
        };
        var (managed, managedExit) = await CniMain.RunAsync(new Hashtable(env), new MemoryStream(Encoding.UTF8.GetBytes(stdin)));

        var info = new ProcessStartInfo(Native) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment.Clear();
        foreach (var (k, v) in env)
        {
            info.Environment[k] = v;
        }

        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var native = await stdout;

        Assert.True(managedExit == process.ExitCode, $"exit {process.ExitCode}, managed {managedExit}: {native} {stderr}");
        using var expected = JsonDocument.Parse(managed);
        using var actual = JsonDocument.Parse(native);
        foreach (var key in new[] { "cniVersion", "code", "msg", "supportedVersions" })
        {
            Assert.Equal(expected.RootElement.TryGetProperty(key, out var e) ? e.GetRawText() : null, actual.RootElement.TryGetProperty(key, out var a) ? a.GetRawText() : null);
        }

        Assert.Empty(stderr);
    }
}
