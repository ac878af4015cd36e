using System.Net;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// A unicast route (RTM_NEWROUTE): <see cref="Destination"/> null is the default route; <see cref="Gateway"/>
/// null makes it a link-scope route through <see cref="OutputIndex"/>, as <c>ip route</c> does. <see cref="Table"/>
/// 254 is "main". Only the fields Mesh uses; read back, a route also carries them alone.
/// </summary>
public sealed record Route
{
    public byte Family { get; init; } = RouteConstants.AF_INET;

    public IPNetwork? Destination { get; init; }

    public IPAddress? Gateway { get; init; }

    /// <summary>RTA_OIF, 0 when not given.</summary>
    public int OutputIndex { get; init; }

    public uint Table { get; init; } = RouteConstants.RT_TABLE_MAIN;

    public override string ToString() =>
        $"{(Destination is { } d ? d.ToString() : "default")}{(Gateway is { } g ? $" via {g}" : "")}{(OutputIndex != 0 ? $" ifindex {OutputIndex}" : "")} table {Table}";
}
