using System.Net;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>A policy routing rule (RTM_NEWRULE): <c>ip rule add from SOURCE lookup TABLE priority PRIORITY</c>.</summary>
public sealed record Rule(uint Priority, IPNetwork? Source, uint Table)
{
    public byte Family { get; init; } = RouteConstants.AF_INET;

    public override string ToString() => $"priority {Priority}{(Source is { } s ? $" from {s}" : "")} lookup {Table}";
}
