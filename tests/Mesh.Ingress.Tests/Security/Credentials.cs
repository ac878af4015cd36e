using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Security;

namespace Mesh.Ingress.Tests.Security;

/// <summary>
/// Real credential files in a temporary directory, made the way an operator makes them: a cluster CA with node
/// certificates for mesh-n1 and mesh-n2 (both naming 127.0.0.1), a second, unrelated CA with its own mesh-n1, and a token.
/// </summary>
public sealed class Credentials : IDisposable
{
    public Credentials()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("mesh-creds-").FullName;
        using (var ca = CertificateAuthority.Create("mesh test cluster", TimeSpan.FromDays(2)))
        {
            ca.Save(Directory);
            foreach (var node in new[] { "mesh-n1", "mesh-n2" })
            {
                ca.Issue(node, [IPAddress.Loopback], [], TimeSpan.FromDays(1)).Save(Cert(node), Key(node));
            }
        }

        using (var other = CertificateAuthority.Create("somebody else's CA", TimeSpan.FromDays(2)))
        {
            other.Save(OtherDirectory);
            other.Issue("mesh-n1", [IPAddress.Loopback], [], TimeSpan.FromDays(1)).Save(OtherCert, OtherKey);
        }

        File.WriteAllText(TokenFile, Token + "\n");
        File.SetUnixFileMode(TokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    public string Directory { get; }

    public string Ca => CertificateAuthority.CertificatePath(Directory);

    public string OtherDirectory => Path.Combine(Directory, "other");

    public string OtherCa => CertificateAuthority.CertificatePath(OtherDirectory);

    public string OtherCert => Path.Combine(OtherDirectory, "mesh-n1.crt");

    public string OtherKey => Path.Combine(OtherDirectory, "mesh-n1.key");

    public string Token { get; } = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public string TokenFile => Path.Combine(Directory, "token");

    public string Cert(string node) => Path.Combine(Directory, node + ".crt");

    public string Key(string node) => Path.Combine(Directory, node + ".key");

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
