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
        var installer = new CniInstaller(bin, conf, "unix:///run/mesh/mesh.sock", 1450);
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
}
