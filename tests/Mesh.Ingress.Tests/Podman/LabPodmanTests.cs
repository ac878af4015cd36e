using Mesh.Ingress.Lab.Podman;

namespace Mesh.Ingress.Tests.Podman;

public sealed class LabPodmanTests
{
    [Fact]
    public void Containers_conf_names_the_cni_backend_and_dirs_and_refuses_a_path_that_would_break_its_toml()
    {
        var conf = LabPodman.ContainersConf("/run/x/bin", "/run/x/net.d");
        Assert.Contains("network_backend = \"cni\"", conf, StringComparison.Ordinal);
        Assert.Contains("cni_plugin_dirs = [\"/run/x/bin\", \"/usr/lib/cni\"]", conf, StringComparison.Ordinal);
        Assert.Contains("network_config_dir = \"/run/x/net.d\"", conf, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LabPodman.ContainersConf("/run/x\"]\nruntime = \"evil", "/run/x/net.d"));
        Assert.Throws<ArgumentException>(() => LabPodman.ContainersConf("relative/bin", "/run/x/net.d"));
    }
}
