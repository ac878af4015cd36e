using System.Text.Json;
using Mesh.Ingress.Cni;

namespace Mesh.Ingress.Tests.Cni;

public sealed class CniInstallerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-cni-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Install_writes_the_plugin_and_one_conflist_per_service_and_removes_only_its_own_stale_lists()
    {
        var bin = Path.Combine(_dir, "bin");
        var conf = Path.Combine(_dir, "net.d");
        Directory.CreateDirectory(conf);
        File.WriteAllText(Path.Combine(conf, "mesh-other.conflist"), """{"cniVersion":"1.0.0","name":"mesh-other","plugins":[{"type":"bridge"}]}""");
        // No native plugin given (a Debug build has none): the script that runs `mesh cni plugin`.
        var installer = new CniInstaller(bin, conf, "unix:///run/mesh/mesh.sock", 1450, nativePlugin: null);
        installer.Install(["web", "api"], TextWriter.Null);
        installer.Install(["web"], TextWriter.Null);

        var script = File.ReadAllText(Path.Combine(bin, "mesh-cni"));
        Assert.StartsWith("#!/bin/sh\n", script, StringComparison.Ordinal);
        Assert.EndsWith(" 'cni' 'plugin'\n", script, StringComparison.Ordinal);
        Assert.True(File.GetUnixFileMode(Path.Combine(bin, "mesh-cni")).HasFlag(UnixFileMode.OtherExecute));
        Assert.Equal(["mesh-other.conflist", "mesh-web.conflist"], Directory.GetFiles(conf).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(conf, "mesh-web.conflist")));
        Assert.Equal("mesh-web", doc.RootElement.GetProperty("name").GetString());
        Assert.Equal("1.0.0", doc.RootElement.GetProperty("cniVersion").GetString());
        var plugin = doc.RootElement.GetProperty("plugins")[0];
        Assert.Equal(("mesh-cni", "web", 1450), (plugin.GetProperty("type").GetString(), plugin.GetProperty("service").GetString(), plugin.GetProperty("mtu").GetInt32()));
    }

    [Fact]
    public void Install_copies_the_native_plugin_when_there_is_one_and_replaces_a_script_with_it()
    {
        var bin = Path.Combine(_dir, "bin");
        var conf = Path.Combine(_dir, "net.d");
        new CniInstaller(bin, conf, "unix:///run/mesh/mesh.sock", 1450, nativePlugin: null).Install(["web"], TextWriter.Null);
        var native = Path.Combine(_dir, "mesh-cni-native");
        byte[] elf = [0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0xde, 0xad];
        File.WriteAllBytes(native, elf);
        File.SetUnixFileMode(native, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        new CniInstaller(bin, conf, "unix:///run/mesh/mesh.sock", 1450, native).Install(["web"], TextWriter.Null);

        var plugin = Path.Combine(bin, "mesh-cni");
        Assert.Equal(elf, File.ReadAllBytes(plugin));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(plugin));
        Assert.Equal(["mesh-cni"], Directory.GetFiles(bin).Select(Path.GetFileName)); // no temporary file left
    }

    [Fact]
    public void The_native_plugin_is_found_only_when_it_is_beside_the_binary()
    {
        Assert.Null(CniInstaller.NativePluginBeside(_dir));
        File.WriteAllBytes(Path.Combine(_dir, "mesh-cni"), [1]);
        Assert.Equal(Path.Combine(_dir, "mesh-cni"), CniInstaller.NativePluginBeside(_dir));
    }
}
