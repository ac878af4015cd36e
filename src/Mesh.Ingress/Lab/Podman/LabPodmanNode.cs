using System.Globalization;
using Mesh.Ingress.Cni;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Lab.Podman;

/// <summary>
/// podman on one lab node, as a container host runs it: inside the node's namespace (nsenter --net, not
/// <c>ip netns exec</c>: DEPENDENCIES.md), on the lab's private storage, with the node's own mesh-cni networks and
/// plugin directory (/run/mesh/lab/podman/cni-n&lt;i&gt;, named in a containers.conf given as $CONTAINERS_CONF: podman
/// 4.3 has no flag for the plugin directory). Every container it starts carries the label
/// <see cref="NodeLabel"/>, so <c>lab down</c> finds it and removes it on the right node.
/// </summary>
public sealed class LabPodmanNode(ICommandRunner runner, int node)
{
    public const string NodeLabel = "mesh.lab.node";

    /// <summary>libcni caches every ADD result here (podman's rm deletes them through DEL; a killed podman may not).</summary>
    public const string CniResultCache = "/var/lib/cni/results";

    public static string CniDirectory(int node) => string.Create(CultureInfo.InvariantCulture, $"{LabPodman.Directory}/cni-n{node}");

    public static string ContainersConfOf(int node) => CniDirectory(node) + "/containers.conf";

    public string Node => LabPlan.NodeName(node);

    /// <summary>The nodes the podman runtime was set up on (what <c>lab down</c> looks at).</summary>
    public static IEnumerable<int> InstalledNodes() =>
        Directory.EnumerateDirectories(LabPodman.Directory, "cni-n*")
            .Where(d => File.Exists(Path.Combine(d, "containers.conf")))
            .Select(d => Path.GetFileName(d)["cni-n".Length..])
            .Where(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .Select(n => int.Parse(n, CultureInfo.InvariantCulture))
            .Order();

    /// <summary>The podman command line on this node: what the lab runs, and what a person types to look (README).</summary>
    public IReadOnlyList<string> CommandLine(IReadOnlyList<string> arguments) =>
    [
        $"--net={NetworkNamespacePath.Named(Node).Path}", "--", "env", $"CONTAINERS_CONF={ContainersConfOf(node)}",
        LabPodman.Executable, .. LabPodman.GlobalArguments, .. arguments,
    ];

    public Task<CommandResult> PodmanAsync(IReadOnlyList<string> arguments, CancellationToken ct)
    {
        // conmon outlives the podman that starts it: it must not inherit the lab lock a caller holds (MeshExecutable).
        MeshExecutable.StopPassingOnInheritedDescriptors();
        return runner.RunAsync("nsenter", CommandLine(arguments), null, ct);
    }

    /// <summary>mesh-cni and one network per service for this node's daemon, and the containers.conf naming them.</summary>
    public void Install(IEnumerable<string> services)
    {
        var dir = CniDirectory(node);
        new CniInstaller($"{dir}/bin", $"{dir}/net.d", LabPlan.Api(Node), LabPlan.OverlayMtu).Install(services, TextWriter.Null);
        File.WriteAllText(ContainersConfOf(node), LabPodman.ContainersConf($"{dir}/bin", $"{dir}/net.d"));
    }

    /// <summary>
    /// Starts container <paramref name="name"/> on network <c>mesh-&lt;service&gt;</c>; returns podman's container ID.
    /// The image answers with $MESH_TASK. The hostname stays podman's (the short ID, as Docker's): a hostname
    /// <c>web.1</c> makes the resolver's default search domain "1", and <c>nslookup web</c> then asks for
    /// <c>web.1</c> first and gets the task itself, not the VIP. <c>--dns 127.0.0.11</c>: the embedded DNS alone,
    /// as in Docker (podman would add the host's nameservers after the CNI result's). The ulimits stay under this
    /// machine's hard limits (DEPENDENCIES.md).
    /// </summary>
    public async Task<string> RunAsync(string name, string service, CancellationToken ct)
    {
        var run = await PodmanAsync(
        [
            "run", "-d", "--name", name, "--label", $"{NodeLabel}={Node}", "--env", $"MESH_TASK={name}", "--env", $"MESH_NODE={Node}",
            "--network", CniInstaller.NetworkOf(service), "--dns", "127.0.0.11",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", TaskImage.Name,
        ], ct);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"podman run {name} on {Node} failed (exit {run.ExitCode}): {run.Stderr.Trim()}");
        }

        return run.Stdout.Trim().Split('\n')[^1];
    }

    /// <summary>The ID of the running container <paramref name="name"/>; null when there is none or it is not running.</summary>
    public async Task<string?> ContainerIdAsync(string name, CancellationToken ct)
    {
        var inspect = await PodmanAsync(["container", "inspect", "--format", "{{.Id}} {{.State.Running}}", name], ct);
        return inspect.ExitCode == 0 && inspect.Stdout.Trim().Split(' ') is [var id, "true"] ? id : null;
    }

    /// <summary><c>podman rm -f</c>: the container stops and mesh-cni's DEL takes its task out of the mesh. Absent is fine.</summary>
    public async Task RemoveAsync(string name, CancellationToken ct)
    {
        // Every node's podman shares the lab's storage: rm runs on the container's own node, where DEL finds its legs.
        var label = await PodmanAsync(["container", "inspect", "--format", $"{{{{index .Config.Labels \"{NodeLabel}\"}}}}", name], ct);
        if (label.ExitCode != 0)
        {
            return;
        }

        var owner = label.Stdout.Trim();
        var on = owner != Node && owner.StartsWith("mesh-n", StringComparison.Ordinal)
            && int.TryParse(owner["mesh-n".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var other) && Directory.Exists(CniDirectory(other))
            ? new LabPodmanNode(runner, other)
            : this;
        var rm = await on.PodmanAsync(["rm", "-f", "--ignore", "-t", "0", name], ct);
        if (rm.ExitCode != 0)
        {
            throw new InvalidOperationException($"podman rm -f {name} on {on.Node} failed (exit {rm.ExitCode}): {rm.Stderr.Trim()}");
        }
    }

    /// <summary>Removes every container of the lab on this node (by label); returns their IDs.</summary>
    public async Task<IReadOnlyList<string>> RemoveAllAsync(CancellationToken ct)
    {
        var ps = await PodmanAsync(["ps", "-a", "--no-trunc", "--filter", $"label={NodeLabel}={Node}", "--format", "{{.ID}}"], ct);
        // Only what looks like podman's IDs (64 hex digits) is passed on.
        var ids = ps.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(id => id.Length == 64 && id.All(char.IsAsciiHexDigitLower)).ToList();
        if (ids.Count > 0)
        {
            await PodmanAsync(["rm", "-f", "--ignore", "-t", "0", .. ids], ct);
        }

        return ids;
    }

    /// <summary>libcni's cached results (<c>&lt;network&gt;-&lt;container id&gt;-&lt;ifname&gt;</c>) of these containers.</summary>
    public static void ForgetCachedResults(IReadOnlyCollection<string> containerIds)
    {
        if (containerIds.Count == 0 || !Directory.Exists(CniResultCache))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(CniResultCache).Where(f => containerIds.Any(id => Path.GetFileName(f).Contains(id, StringComparison.Ordinal))))
        {
            File.Delete(file);
        }
    }
}
