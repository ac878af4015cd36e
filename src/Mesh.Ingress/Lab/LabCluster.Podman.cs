using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Cni;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab.Podman;

namespace Mesh.Ingress.Lab;

/// <summary>
/// <c>--runtime podman</c>: each task is a container of <c>localhost/mesh-task</c>, started by podman inside its
/// node's namespace and attached by <c>mesh-cni</c> (installed per node), as on a real host. The store names a
/// container's task (mesh-cni registers it; the store picks <c>&lt;service&gt;.&lt;k&gt;</c>, the lowest free k), so
/// the lab runs the container under the name the store will give and checks the two agree.
/// </summary>
public sealed partial class LabCluster
{
    /// <summary>What the podman runtime's task differs in from <c>mesh lab serve</c>: said at <c>lab up</c>, not left to be found.</summary>
    public const string PodmanLimits =
        "note: podman tasks run busybox httpd (localhost/mesh-task): HTTP GET / only, so web publishes 8080/tcp and no UDP; "
        + "no PROXY v2 header is read (proxy=-), there is no /healthz or /lab/health switch, and the api tasks have no 'backend' alias (mesh-cni registers none)";

    private async Task EnsureTaskImageAsync(CancellationToken ct)
    {
        var exists = await runner.RunAsync(LabPodman.Executable, [.. LabPodman.GlobalArguments, "--network-config-dir", $"{LabPodman.Directory}/net.d", "image", "exists", TaskImage.Name], null, ct);
        if (exists.ExitCode != 0)
        {
            var id = await new TaskImage(runner, TaskImage.DefaultBusybox).BuildAsync(ct);
            output.WriteLine($"Task image {TaskImage.Name} {id}");
        }
    }

    private async Task<ServiceTask> StartContainerAsync(IClusterStore store, string taskName, int nodeIndex, CancellationToken ct)
    {
        var node = LabPlan.NodeName(nodeIndex);
        var service = taskName.Split('.')[0];
        var podman = new LabPodmanNode(runner, nodeIndex);
        var state = await store.GetStateAsync(ct);
        var running = await podman.ContainerIdAsync(taskName, ct);
        if (state.Tasks.FirstOrDefault(t => t.Name == taskName) is { } registered)
        {
            if (registered.ContainerId is not null && registered.ContainerId == running)
            {
                return registered;
            }

            if (registered.ContainerId is null)
            {
                throw new InvalidOperationException($"task '{taskName}' is registered, but not by a container (`mesh task rm {taskName}` first)");
            }
        }

        // A container of that name that is not its running task (stopped, or its task removed with `mesh task rm`) is
        // replaced: podman rm (whose DEL deregisters it), and a registration whose container is gone is removed too.
        await podman.RemoveAsync(taskName, ct);
        state = await store.GetStateAsync(ct);
        if (state.Tasks.FirstOrDefault(t => t.Name == taskName) is { ContainerId: not null })
        {
            await store.RemoveTaskAsync(taskName, ct);
            state = await store.GetStateAsync(ct);
        }

        var next = NextTaskName(state, service);
        if (next != taskName)
        {
            throw new ArgumentException($"task '{taskName}': with the podman runtime the store names a container's task (mesh-cni registers it), and the next task of {service} is {next}");
        }

        // Every start re-installs the node's mesh-cni networks: a service created since then gets its mesh-<service>.
        podman.Install(state.Services.Select(s => s.Name));
        var id = await podman.RunAsync(taskName, service, ct);
        state = await store.GetStateAsync(ct);
        var task = state.Tasks.FirstOrDefault(t => t.ContainerId == id);
        if (task is null || task.Name != taskName || task.Node != node)
        {
            await podman.RemoveAsync(taskName, ct);
            throw new InvalidOperationException(
                $"container {taskName} became {(task is null ? "no task" : $"task '{task.Name}' on {task.Node}")}, not '{taskName}' on {node} (did something else add a task of {service} meanwhile?); removed it");
        }

        // Registered at CNI ADD, before httpd runs: wait until it answers, as lab up waits for `mesh lab serve`.
        var netns = new NetworkNamespacePath(task.NetnsPath);
        await WaitUntilAsync(async () =>
            (await runner.RunInAsync(netns, "curl", ["-sf", "-m", "2", $"http://127.0.0.1:{LabPlan.DemoTarget.ToString(CultureInfo.InvariantCulture)}/"], null, ct)).ExitCode == 0,
            TimeSpan.FromSeconds(60), $"container {taskName} does not answer on :{LabPlan.DemoTarget}: podman logs {taskName}", ct);

        // It is routed once its node's daemon has found its port open and made it running (TaskReadinessProber).
        await WaitUntilAsync(async () =>
            (await store.GetStateAsync(ct)).Tasks.FirstOrDefault(t => t.Name == taskName)?.State switch
            {
                TaskState.Running => true,
                TaskState.Starting => false,
                var other => throw new InvalidOperationException($"task '{taskName}' is {(other is { } s ? StateTransitions.StateName(s) : "gone")}, not running: podman logs {taskName}"),
            },
            TimeSpan.FromSeconds(70), $"task '{taskName}' is still starting: its node's daemon has not found port {LabPlan.DemoTarget} open", ct);
        return (await store.GetStateAsync(ct)).Tasks.First(t => t.Name == taskName);
    }

    /// <summary>The store's choice for a task it names (StateTransitions: the lowest free slot).</summary>
    private static string NextTaskName(ClusterState state, string service)
    {
        for (var k = 1; ; k++)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"{service}.{k}");
            if (state.Tasks.All(t => t.Name != name))
            {
                return name;
            }
        }
    }

    /// <summary>
    /// Every container of the lab, each with <c>podman rm -f</c> in its own node (so mesh-cni's DEL reaches that node's
    /// daemon); then libcni's cached results of those containers and whatever podman left mounted under the lab's directory.
    /// </summary>
    private async Task RemoveContainersAsync(CancellationToken ct)
    {
        if (!Directory.Exists(LabPodman.Directory) || !LabPodman.IsInstalled())
        {
            return;
        }

        var removed = new List<string>();
        foreach (var nodeIndex in LabPodmanNode.InstalledNodes())
        {
            removed.AddRange(await new LabPodmanNode(runner, nodeIndex).RemoveAllAsync(ct));
        }

        LabPodmanNode.ForgetCachedResults(removed);
        await UnmountUnderAsync(LabPodman.Directory, ct);
        if (removed.Count > 0)
        {
            output.WriteLine($"Removed {removed.Count} podman containers");
        }
    }

    /// <summary>Mounts under <paramref name="directory"/> (a container's shm when podman was killed mid-way), deepest first.</summary>
    private async Task UnmountUnderAsync(string directory, CancellationToken ct)
    {
        var prefix = directory.TrimEnd('/') + "/";
        var mounts = File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 4)
            .Select(f => f[4].Replace("\\040", " ", StringComparison.Ordinal))
            .Where(m => m.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(m => m.Length);
        foreach (var mount in mounts)
        {
            await runner.RunAsync("umount", ["-l", mount], null, ct);
        }
    }
}
