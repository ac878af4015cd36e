namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// A neighbour or FDB entry of a dump as a value (<see cref="RouteHandle.ForEachNeighbour"/>): the fields of
/// <see cref="Neighbour"/> without an object, an <see cref="System.Net.IPAddress"/> and a MAC string per entry.
/// <see cref="Mac"/>: NDA_LLADDR's 6 bytes in the low 48 bits (<see cref="MacText.Format(ulong)"/>), null when absent.
/// </summary>
public readonly record struct NeighbourEntry(NeighbourFamily Family, int LinkIndex, ushort State, byte Flags, IpValue? Destination, ulong? Mac)
{
    public bool Permanent => (State & RouteConstants.NUD_PERMANENT) != 0;

    public bool Self => (Flags & RouteConstants.NTF_SELF) != 0;
}
