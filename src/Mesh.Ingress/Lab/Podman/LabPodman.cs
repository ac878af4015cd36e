namespace Mesh.Ingress.Lab.Podman;

/// <summary>
/// The podman the lab drives: its own storage (<c>--root</c>, <c>--runroot</c>) under the lab's state directory, so
/// the machine's podman state is never touched and <c>lab down</c> removes it with the rest; and the flags this
/// kind of machine needs (DEPENDENCIES.md: runc, cgroupfs). The vfs storage driver mounts nothing, so removing
/// the directory is all it takes to remove the storage; the image is two megabytes, copying it costs nothing.
/// </summary>
public static class LabPodman
{
    public const string Executable = "podman";

    public const string Directory = LabPlan.StateDirectory + "/podman";

    public const string Root = Directory + "/root";

    public const string RunRoot = Directory + "/runroot";

    /// <summary>Global flags of every podman command the lab runs (and a user runs against the lab's storage).</summary>
    public static IReadOnlyList<string> GlobalArguments { get; } =
        ["--root", Root, "--runroot", RunRoot, "--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs"];

    /// <summary>Refuses clearly when podman is not installed, before anything is made.</summary>
    public static void RequireInstalled()
    {
        if (!IsInstalled())
        {
            throw new InvalidOperationException("podman is not installed (apt-get install podman): `mesh lab image` and `mesh lab up --runtime podman` need it");
        }
    }

    public static bool IsInstalled() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, Executable)));

    /// <summary>
    /// A containers.conf (podman reads it from $CONTAINERS_CONF) for containers on mesh networks: podman 4.3 has
    /// flags for the network configuration directory but none for the CNI plugin directories, and the lab keeps
    /// mesh-cni out of the machine's /opt/cni/bin. Paths are validated: they are written into TOML strings.
    /// </summary>
    public static string ContainersConf(string cniBinDir, string cniConfDir)
    {
        foreach (var dir in new[] { cniBinDir, cniConfDir })
        {
            if (!Path.IsPathFullyQualified(dir) || dir.Any(c => c is '"' or '\\' || char.IsControl(c)))
            {
                throw new ArgumentException($"'{dir}' must be an absolute path without quotes, backslashes or control characters");
            }
        }

        return $"""
            # Written for podman on the Mesh lab: the runtime and cgroup manager this kind of machine needs, the CNI backend.
            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"

            [network]
            network_backend = "cni"
            network_config_dir = "{cniConfDir}"
            cni_plugin_dirs = ["{cniBinDir}", "/usr/lib/cni"]

            """;
    }
}
