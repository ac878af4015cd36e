using Mesh.Discovery.Model;

namespace Mesh.Discovery.Tests.Store;

/// <summary>Issue 9: the syntax every node's API enforces on a task's paths before the task's node looks at the real objects.</summary>
public class TaskPathsTests
{
    [Theory]
    [InlineData("/run/netns/web-1")]
    [InlineData("/var/run/netns/cni-6f1c2a3b-0d4e-11ee-be56-0242ac120002")]
    [InlineData("/proc/2/ns/net")]
    [InlineData("/proc/2147483647/ns/net")]
    public void Namespace_paths_of_the_allowed_shapes_pass(string path) => Assert.Equal(path, TaskPaths.NetnsPath("netnsPath", path));

    [Theory]
    [InlineData("/proc/1/ns/net")]            // the host's
    [InlineData("/proc/self/ns/net")]         // the daemon's own
    [InlineData("/proc/thread-self/ns/net")]
    [InlineData("/proc//1/ns/net")]
    [InlineData("/proc/01/ns/net")]
    [InlineData("/proc/0/ns/net")]
    [InlineData("/proc/2147483648/ns/net")]
    [InlineData("/proc/2/ns/mnt")]
    [InlineData("/proc/2/root/run/netns/x")]
    [InlineData("/run/netns")]
    [InlineData("/run/netns/")]
    [InlineData("/run/netns/.")]
    [InlineData("/run/netns/..")]
    [InlineData("/run/netns/a/b")]
    [InlineData("/run/netns//a")]
    [InlineData("/run/netns/a/")]
    [InlineData("/run/netns/../../etc/shadow")]
    [InlineData("/run/netns/a b")]
    [InlineData("/run/netns/a\nb")]
    [InlineData("/etc/shadow")]
    [InlineData("run/netns/a")]
    [InlineData("")]
    [InlineData(null)]
    public void Anything_else_is_refused_naming_the_field(string? path)
    {
        var e = Assert.Throws<ValidationException>(() => TaskPaths.NetnsPath("netnsPath", path));
        Assert.Equal("netnsPath", e.Field);
    }

    [Fact]
    public void Paths_are_capped_in_length()
    {
        var name = new string('a', TaskPaths.MaxLength);
        Assert.Throws<ValidationException>(() => TaskPaths.NetnsPath("netnsPath", "/run/netns/" + name));
        Assert.Throws<ValidationException>(() => TaskPaths.ResolvConfPath("resolvConfPath", "/etc/netns/" + name));
    }

    [Theory]
    [InlineData("/etc/netns/web.1/resolv.conf", true)]
    [InlineData("/run/mesh/tasks/web.1/resolv.conf", true)]
    [InlineData("/etc/netns", false)]
    [InlineData("/etc/netns-evil/resolv.conf", false)]
    [InlineData("/etc/shadow", false)]
    public void A_resolv_conf_path_must_lie_strictly_below_a_root(string path, bool allowed)
    {
        if (allowed)
        {
            Assert.Equal(path, TaskPaths.UnderRoot("resolvConfPath", path, TaskPaths.DefaultResolvConfRoots));
        }
        else
        {
            Assert.Equal("resolvConfPath", Assert.Throws<ValidationException>(() => TaskPaths.UnderRoot("resolvConfPath", path, TaskPaths.DefaultResolvConfRoots)).Field);
        }
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/etc/netns/")]
    [InlineData("/etc/../etc")]
    [InlineData("etc")]
    public void A_root_must_be_canonical_and_not_slash(string root) =>
        Assert.Throws<ValidationException>(() => TaskPaths.Root("--resolv-conf-root", root));
}
