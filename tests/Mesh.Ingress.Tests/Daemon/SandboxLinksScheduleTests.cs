using Mesh.Ingress.Daemon;

namespace Mesh.Ingress.Tests.Daemon;

/// <summary>
/// The node pass verifies the ingress sandbox's links before its rules only when the rules need them; the periodic
/// re-check (every resync interval) comes after the rules, so a change that arrives first after an interval is not
/// held up by it.
/// </summary>
public sealed class SandboxLinksScheduleTests
{
    private static readonly TimeSpan Resync = TimeSpan.FromSeconds(30);

    [Fact]
    public void Links_never_verified_or_for_another_address_or_without_their_namespace_go_before_the_rules()
    {
        Assert.Equal(SandboxLinksCheck.BeforeRules, SandboxLinksSchedule.Decide(null, "10.255.0.2", true, Resync));
        Assert.Equal(SandboxLinksCheck.BeforeRules, SandboxLinksSchedule.Decide(("10.255.0.3", TimeSpan.FromSeconds(1)), "10.255.0.2", true, Resync));
        Assert.Equal(SandboxLinksCheck.BeforeRules, SandboxLinksSchedule.Decide(("10.255.0.2", TimeSpan.FromSeconds(1)), "10.255.0.2", false, Resync));
        Assert.Equal(SandboxLinksCheck.BeforeRules, SandboxLinksSchedule.Decide(("10.255.0.2", TimeSpan.FromMinutes(5)), "10.255.0.2", false, Resync));
    }

    [Fact]
    public void The_periodic_recheck_comes_after_the_rules_and_not_before_its_interval()
    {
        Assert.Equal(SandboxLinksCheck.None, SandboxLinksSchedule.Decide(("10.255.0.2", TimeSpan.FromSeconds(29)), "10.255.0.2", true, Resync));
        Assert.Equal(SandboxLinksCheck.AfterRules, SandboxLinksSchedule.Decide(("10.255.0.2", Resync), "10.255.0.2", true, Resync));
        Assert.Equal(SandboxLinksCheck.AfterRules, SandboxLinksSchedule.Decide(("10.255.0.2", TimeSpan.FromMinutes(5)), "10.255.0.2", true, Resync));
    }
}
