namespace Mesh.Ingress.Tests;

/// <summary>The checkout the tests run from: the first directory above the test binaries holding Mesh.sln and mesh.sh.</summary>
internal static class Checkout
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.sln")) && File.Exists(Path.Combine(dir.FullName, "mesh.sh")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("no checkout (Mesh.sln and mesh.sh) above " + AppContext.BaseDirectory);
    }
}
