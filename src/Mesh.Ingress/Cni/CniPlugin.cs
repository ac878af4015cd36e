using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Cni;

/// <summary>
/// <c>mesh-cni</c>: a container attached to network <c>mesh-&lt;service&gt;</c> becomes a task of that service. ADD
/// registers the task with the local daemon (the store allocates its name and addresses; the container ID is kept
/// with it), then builds its legs; if anything fails after the registration, the legs made so far and the
/// registration are undone before the error is returned. DEL deregisters and deletes the legs, and succeeds when
/// there is nothing left to do. CHECK compares the legs and the registration with what ADD made.
/// </summary>
public sealed class CniPlugin
{
    private readonly CniLinks _links = new();

    /// <summary>Runs one call; returns the bytes for stdout and the exit code (0, or 1 with error JSON).</summary>
    public async Task<(byte[] Output, int ExitCode)> RunAsync(CniEnvironment env, ReadOnlyMemory<byte> stdin, CancellationToken ct)
    {
        if (env.Command == CniCommand.Version)
        {
            return (CniResult.Version(CniVersions.Latest), 0);
        }

        var config = CniNetworkConfig.Parse(stdin.Span);
        if (env.Command is CniCommand.Status or CniCommand.Gc && !CniVersions.HasStatusAndGc(config.CniVersion))
        {
            throw new CniException(CniErrorCode.IncompatibleVersion, $"{env.Command.ToString().ToUpperInvariant()} needs cniVersion 1.1.0, the configuration says {config.CniVersion}");
        }

        using var daemon = new CniDaemon(config.Api);
        switch (env.Command)
        {
            case CniCommand.Add:
                return (await AddAsync(env, config, daemon, ct), 0);
            case CniCommand.Del:
                await DelAsync(env, daemon, ct);
                return ([], 0);
            case CniCommand.Check:
                await CheckAsync(env, config, daemon, ct);
                return ([], 0);
            case CniCommand.Status:
                await StatusAsync(daemon, ct);
                return ([], 0);
            case CniCommand.Gc:
                await GcAsync(config, daemon, ct);
                return ([], 0);
            default:
                throw new CniException(CniErrorCode.InvalidEnvironment, $"unknown command {env.Command}");
        }
    }

    private async Task<byte[]> AddAsync(CniEnvironment env, CniNetworkConfig config, CniDaemon daemon, CancellationToken ct)
    {
        var service = config.RequireService();
        var netns = env.Netns!;
        if (!File.Exists(netns))
        {
            throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_NETNS {netns} does not exist");
        }

        var nodeRequest = daemon.NodeAsync(ct);
        var state = await daemon.StateAsync(ct);
        var node = await nodeRequest;
        if (state.Tasks.FirstOrDefault(t => t.ContainerId == env.ContainerId) is { } existing)
        {
            // A repeated ADD (the spec says runtimes should not send one): the same answer when everything is in place.
            var legs = CniLeg.Plan(env.ContainerId!, env.InterfaceName!, state, existing, OverlayBridges.Of);
            var problems = existing.NetnsPath == netns ? await _links.CheckAsync(netns, legs, ct) : [$"it is attached in {existing.NetnsPath}"];
            return problems.Count == 0
                ? CniResult.Success(config.CniVersion, netns, legs)
                : throw new CniException(CniErrorCode.RegistrationRefused, $"container {env.ContainerId} is already task '{existing.Name}', and {string.Join("; ", problems)}: DEL it first");
        }

        if (!state.Services.Any(s => s.Name == service))
        {
            throw new CniException(CniErrorCode.InvalidConfig, $"service '{service}' does not exist (create it with 'mesh service create {service} …', then re-run 'mesh cni install')");
        }

        var task = await daemon.AddTaskAsync(service, node, netns, env.ContainerId!, ct);
        try
        {
            // The state read above still holds the service and its networks; the task brings its allocated addresses.
            var legs = CniLeg.Plan(env.ContainerId!, env.InterfaceName!, state, task, OverlayBridges.Of);
            await _links.AddAsync(netns, legs, config.Mtu, ct);
            return CniResult.Success(config.CniVersion, netns, legs);
        }
        catch
        {
            // Nothing half-made stays: the legs (by their names, whatever got created) and the registration go.
            await UndoAsync(env.ContainerId!, task.Name, daemon);
            throw;
        }
    }

    private async Task UndoAsync(string containerId, string task, CniDaemon daemon)
    {
        using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await _links.DeleteAsync(containerId, cleanup.Token);
        }
        finally
        {
            await daemon.RemoveTaskAsync(task, cleanup.Token);
        }
    }

    private async Task DelAsync(CniEnvironment env, CniDaemon daemon, CancellationToken ct)
    {
        // The registration first, so no node routes to the container while its legs go; the legs go even when the
        // daemon does not answer (they are ours alone), and then the runtime hears "try again later" and repeats DEL.
        try
        {
            var state = await daemon.StateAsync(ct);
            if (state.Tasks.FirstOrDefault(t => t.ContainerId == env.ContainerId) is { } task)
            {
                await daemon.RemoveTaskAsync(task.Name, ct);
            }
        }
        finally
        {
            await _links.DeleteAsync(env.ContainerId!, ct);
        }
    }

    private async Task CheckAsync(CniEnvironment env, CniNetworkConfig config, CniDaemon daemon, CancellationToken ct)
    {
        var service = config.RequireService();
        var state = await daemon.StateAsync(ct);
        var task = state.Tasks.FirstOrDefault(t => t.ContainerId == env.ContainerId)
            ?? throw new CniException(CniErrorCode.UnknownContainer, $"container {env.ContainerId} is not a task of the mesh");
        if (task.Service != service || task.NetnsPath != env.Netns)
        {
            throw new CniException(CniErrorCode.LegMismatch, $"container {env.ContainerId} is task '{task.Name}' of service '{task.Service}' in {task.NetnsPath}, not of '{service}' in {env.Netns}");
        }

        var problems = await _links.CheckAsync(env.Netns!, CniLeg.Plan(env.ContainerId!, env.InterfaceName!, state, task, OverlayBridges.Of), ct);
        if (problems.Count > 0)
        {
            throw new CniException(CniErrorCode.LegMismatch, $"task '{task.Name}': {problems[0]}", string.Join("; ", problems));
        }
    }

    /// <summary>STATUS: ADD can work only while the daemon answers.</summary>
    private static async Task StatusAsync(CniDaemon daemon, CancellationToken ct)
    {
        try
        {
            await daemon.NodeAsync(ct);
        }
        catch (CniException e) when (e.Code == CniErrorCode.TryAgainLater)
        {
            throw new CniException(CniErrorCode.PluginNotAvailable, e.Message, e.Details);
        }
    }

    /// <summary>GC: every task of this node on this network's service whose container the runtime no longer has goes.</summary>
    private async Task GcAsync(CniNetworkConfig config, CniDaemon daemon, CancellationToken ct)
    {
        var service = config.RequireService();
        var valid = (config.ValidAttachments ?? []).Select(a => a.ContainerId).ToHashSet(StringComparer.Ordinal);
        var node = await daemon.NodeAsync(ct);
        var state = await daemon.StateAsync(ct);
        foreach (var task in state.Tasks.Where(t => t.Node == node && t.Service == service && t.ContainerId is not null && !valid.Contains(t.ContainerId)))
        {
            await daemon.RemoveTaskAsync(task.Name, ct);
            await _links.DeleteAsync(task.ContainerId!, ct);
        }
    }
}
