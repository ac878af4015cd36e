namespace Mesh.Ipvs;

/// <summary>IPVS_CMD_GET_INFO reply: the IPVS version code (e.g. 0x010201 = 1.2.1) and the connection hash table size.</summary>
public sealed record IpvsInfo(uint Version, uint ConnectionTableSize)
{
    public int Major => (int)((Version >> 16) & 0xFF);
    public int Minor => (int)((Version >> 8) & 0xFF);
    public int Patch => (int)(Version & 0xFF);
    public string VersionString => $"{Major}.{Minor}.{Patch}";
}
