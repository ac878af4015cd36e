using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ipvs;

namespace Mesh.Ingress.Daemon;

/// <summary>The node will not touch what a task names: the reason is in the message (the task's name is added by the caller).</summary>
public sealed class TaskRefusedException(string message) : Exception(message);

/// <summary>
/// What a task's <c>netnsPath</c> must be on its node before the daemon enters it as root: a canonical path of the
/// allowed shapes (<see cref="TaskPaths.NetnsPath"/>, checked again here because a task can arrive through the store
/// without passing any API), naming a real network namespace (<see cref="NetworkNamespace.Identify"/>), and not one
/// the node itself lives in or owns: the host's (PID 1's), the daemon's own, or this node's ingress sandbox. Namespaces
/// are compared by nsfs device and inode, so no spelling (<c>/proc//1/…</c>, <c>/var/run</c> vs <c>/run</c>, a bind
/// mount) gets around it.
/// The tools that then enter the namespace (nsenter, the resolver's setns thread) open the path again: replacing the
/// mount between the check and that open takes root on the node, which is past what this guards against.
/// </summary>
public sealed class TaskNamespaceGuard(NodeNetworkOptions network)
{
    public const string HostNamespace = "/proc/1/ns/net";
    public const string OwnNamespace = "/proc/self/ns/net";

    /// <summary>
    /// The namespaces no task may use, read afresh (the sandbox is recreated when someone deletes it). The daemon's own
    /// must be identifiable, or nothing can be checked and this throws. The host's (PID 1's) is unreadable under some
    /// supervisors even for root (ptrace access checks on /proc/1): then the daemon's own namespace, which is the
    /// host's wherever the daemon runs on the host, stands for it, and <see cref="ReservedNamespaces.HostUnreadable"/> says why.
    /// </summary>
    public ReservedNamespaces Reserved()
    {
        var reserved = new Dictionary<NetworkNamespaceId, string>();
        string? hostUnreadable = null;
        try
        {
            reserved[NetworkNamespace.Identify(HostNamespace)] = "the host's network namespace";
        }
        catch (IOException e)
        {
            hostUnreadable = e.Message;
        }

        reserved.TryAdd(NetworkNamespace.Identify(OwnNamespace), "the daemon's own network namespace");
        try
        {
            reserved.TryAdd(NetworkNamespace.Identify(NetworkNamespacePath.Named(network.IngressSandbox).Path!), $"the ingress sandbox {network.IngressSandbox}");
        }
        catch (FileNotFoundException)
        {
            // Not built yet: there is nothing of the sandbox's to protect.
        }

        return new ReservedNamespaces(reserved, hostUnreadable);
    }

    /// <summary>
    /// The identity of the task's namespace; throws <see cref="ValidationException"/> (bad syntax),
    /// <see cref="FileNotFoundException"/> (not there), <see cref="IOException"/> (not a network namespace) or
    /// <see cref="TaskRefusedException"/> (a reserved namespace).
    /// </summary>
    public NetworkNamespaceId Check(string? netnsPath, ReservedNamespaces reserved)
    {
        var path = TaskPaths.NetnsPath("netnsPath", netnsPath);
        var id = NetworkNamespace.Identify(path);
        return reserved.Ids.TryGetValue(id, out var what)
            ? throw new TaskRefusedException($"netnsPath '{path}' is {what} ({id})")
            : id;
    }
}

/// <summary>Namespaces no task may name, with what each is; <paramref name="HostUnreadable"/>: why PID 1's could not be read, if so.</summary>
public sealed record ReservedNamespaces(IReadOnlyDictionary<NetworkNamespaceId, string> Ids, string? HostUnreadable);
