namespace Mesh.Discovery.Model;

/// <summary>
/// Every cap on what the API and the store accept, in one place (README "Security" lists them). Each is checked
/// before any per-item work, so an oversized request is refused in constant time and never holds the store's lock.
/// </summary>
public static class Limits
{
    /// <summary>Largest API request body. A service at every other cap below is about 70 KB of JSON.</summary>
    public const int MaxRequestBodyBytes = 256 * 1024;

    /// <summary>Published ports per service (TCP and UDP counted separately).</summary>
    public const int MaxPortsPerService = 1024;

    /// <summary>HTTP routes per service.</summary>
    public const int MaxRoutesPerService = 64;

    /// <summary>Aliases per service and per task.</summary>
    public const int MaxAliasesPerObject = 64;

    /// <summary>User overlay networks a service joins (besides ingress).</summary>
    public const int MaxNetworksPerService = 32;

    /// <summary>Service, node and network names and every label of a dotted name (RFC 1123).</summary>
    public const int MaxLabelLength = 63;

    /// <summary>Task names and aliases: dot-separated labels (RFC 1123).</summary>
    public const int MaxDottedNameLength = 253;

    /// <summary>netnsPath and resolvConfPath.</summary>
    public const int MaxPathLength = 4096;

    /// <summary>
    /// Cluster-wide object counts. Nodes, services (one VIP each) and tasks together stay below the 65,533 usable
    /// addresses of the ingress overlay (10.255.0.0/16), so registrations cannot exhaust it; a firewall mark per service
    /// (from 0x100) stays well inside the 24 bits the dataplanes use.
    /// </summary>
    public const int MaxNodes = 1_000;

    public const int MaxServices = 10_000;

    public const int MaxTasks = 50_000;

    /// <summary>User overlay networks in the cluster.</summary>
    public const int MaxNetworks = 1_000;

    /// <summary>Firewall marks are allocated from 0x100 upwards and must fit the dataplanes' 24-bit service mark.</summary>
    public const int MaxFirewallMark = (1 << 24) - 1;
}
