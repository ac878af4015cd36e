namespace Mesh.Ingress.Daemon;

/// <summary>Where in a node pass the ingress sandbox's links are verified, if at all.</summary>
public enum SandboxLinksCheck
{
    /// <summary>Verified recently, for this address: nothing to do this pass.</summary>
    None,

    /// <summary>Before the rules, which need them: never verified, verified for another address, or the namespace is gone.</summary>
    BeforeRules,

    /// <summary>The periodic re-check, after the rules: it reads two namespaces' links, addresses, routes and sysctls
    /// (375 ms seen on a loaded node), and before the rules it held up whichever change came first after each interval.</summary>
    AfterRules,
}

public static class SandboxLinksSchedule
{
    /// <summary>The check this pass needs, from what was last verified (address and when) and whether the sandbox's namespace exists.</summary>
    public static SandboxLinksCheck Decide((string Address, TimeSpan Age)? verified, string address, bool namespaceExists, TimeSpan resyncInterval) =>
        verified is not { } v || v.Address != address || !namespaceExists ? SandboxLinksCheck.BeforeRules
        : v.Age >= resyncInterval ? SandboxLinksCheck.AfterRules
        : SandboxLinksCheck.None;
}
