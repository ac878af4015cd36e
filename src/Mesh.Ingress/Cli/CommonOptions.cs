using System.CommandLine;

namespace Mesh.Ingress.Cli;

/// <summary>Options shared by every client command.</summary>
public static class CommonOptions
{
    public static Option<string> Api { get; } = new("--api")
    {
        Description = "The daemon's API: unix:///path.sock or http://HOST:PORT (env MESH_API)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("MESH_API") is { Length: > 0 } env ? env : ApiClientFactory.DefaultApi,
        Recursive = true,
    };

    public static Option<bool> Json { get; } = new("--json") { Description = "Print JSON instead of a table" };
}
