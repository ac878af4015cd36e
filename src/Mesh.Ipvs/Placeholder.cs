namespace Mesh.Ipvs;
