using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>Runs the real clients (curl, ip, nft, iptables-save) and the mesh binary under test.</summary>
internal static class Shell
{
    // `mesh lab up` on a busy machine takes minutes: far longer than the daemon's per-command default.
    private static readonly ProcessCommandRunner Runner = new(TimeSpan.FromMinutes(15));

    public static string MeshBinary => Path.Combine(AppContext.BaseDirectory, "mesh");

    public static async Task<CommandResult> RunAsync(string file, params string[] args) => await Runner.RunAsync(file, args);

    public static async Task<string> CheckedAsync(string file, params string[] args) => await Runner.RunCheckedAsync(file, args);

    public static Task<CommandResult> MeshAsync(params string[] args) => RunAsync(MeshBinary, args);

    public static Task<CommandResult> MeshApiAsync(string node, params string[] args) =>
        RunAsync(MeshBinary, [.. args, "--api", $"unix:///run/mesh/lab/{node}.sock"]);

    /// <summary><paramref name="count"/> requests from the client namespace, each on a new connection; the answering task names.</summary>
    public static async Task<List<string>> CurlTasksAsync(string address, int count)
    {
        var args = new List<string> { "netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "-H", "Connection: close" };
        for (var i = 0; i < count; i++)
        {
            args.Add($"http://{address}:8080/");
        }

        var output = await CheckedAsync("ip", [.. args]);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).ToList();
    }

    public static async Task<string> MeshRulesAsync(string node)
    {
        var save = await CheckedAsync("ip", "netns", "exec", node, "iptables-save");
        var rules = string.Join('\n', save.Split('\n').Where(l => l.Contains("MESH", StringComparison.Ordinal)));
        var nft = await CheckedAsync("ip", "netns", "exec", node + "-ingress", "nft", "-s", "list", "table", "ip", "mesh");
        // The nftables dataplane's host NAT (none on the ipvs dataplane).
        var host = await RunAsync("ip", "netns", "exec", node, "nft", "-s", "list", "table", "ip", "mesh-host");
        return rules + "\n" + nft + (host.ExitCode == 0 ? host.Stdout : "");
    }
}
