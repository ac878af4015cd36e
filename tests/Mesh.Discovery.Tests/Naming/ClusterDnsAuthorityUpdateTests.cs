using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Naming;

/// <summary>
/// <see cref="ClusterDnsAuthority.Update"/> skips building its index again only for the very state object it was last
/// built from (a resync): any other state, an earlier one included, is answered from.
/// </summary>
public class ClusterDnsAuthorityUpdateTests
{
    private static readonly DnsClientContext FromWeb1 = new("web.1", null, DnsTransport.Udp);

    private static DnsLookupStatus Ask(ClusterDnsAuthority authority, string name) =>
        authority.Lookup(new DnsQuestion(DnsName.Parse(name), DnsType.A), FromWeb1).Status;

    [Fact]
    public void The_same_state_again_changes_nothing_and_an_earlier_state_is_answered_from_again()
    {
        var s = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        s = StateTransitions.CreateNetwork(s, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "web", Networks = ["appnet"] }).State;
        var withWeb = StateTransitions.AddTask(s, new TaskSpec { Service = "web", Node = "n1" }).State;
        var withApi = StateTransitions.CreateService(withWeb, new ServiceSpec { Name = "api", Networks = ["appnet"] }).State;

        var authority = new ClusterDnsAuthority();
        authority.Update(withWeb);
        Assert.Equal(DnsLookupStatus.NameError, Ask(authority, "api"));
        authority.Update(withWeb);
        Assert.Equal((DnsLookupStatus.NameError, withWeb.Revision), (Ask(authority, "api"), authority.Revision));

        authority.Update(withApi);
        Assert.Equal((DnsLookupStatus.Answered, withApi.Revision), (Ask(authority, "api"), authority.Revision));

        // Back to the earlier state object (a store that went back, a test): answered from it, not skipped.
        authority.Update(withWeb);
        Assert.Equal((DnsLookupStatus.NameError, withWeb.Revision), (Ask(authority, "api"), authority.Revision));
    }
}
