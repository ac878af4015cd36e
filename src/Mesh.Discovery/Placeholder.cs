namespace Mesh.Discovery;
