using Mesh.Discovery.Store.Etcd;

namespace Mesh.Discovery.Tests.Store.Etcd;

public sealed class EtcdStoreOptionsTests
{
    [Fact]
    public void Parses_one_or_many_members_with_the_default_port()
    {
        Assert.Equal([new Uri("http://127.0.0.1:2379/")], EtcdStoreOptions.ParseEndpoints("etcd://127.0.0.1:2379"));
        Assert.Equal(
            [new Uri("http://198.18.0.11:2379/"), new Uri("http://etcd-2:22379/"), new Uri("http://[fd00::1]:2379/")],
            EtcdStoreOptions.ParseEndpoints("etcd://198.18.0.11, etcd-2:22379,[fd00::1]:2379/"));
        Assert.Equal("/mesh/", EtcdStoreOptions.Parse("etcd://h:1").Prefix);
    }

    [Theory]
    [InlineData("http://127.0.0.1:2379")]
    [InlineData("etcd://")]
    [InlineData("etcd://a:1,,b:2")]
    [InlineData("etcd://a:99999")]
    [InlineData("etcd://a:1/path")]
    [InlineData("etcd://user@a:1")]
    public void Rejects_what_is_not_a_member_list(string text) =>
        Assert.Throws<FormatException>(() => EtcdStoreOptions.ParseEndpoints(text));
}
