namespace Mesh.Discovery.Model;

/// <summary>Where a published port listens (Docker's <c>--publish mode=</c>).</summary>
public enum PublishMode
{
    /// <summary>On every node, through the ingress sandbox (the routing mesh).</summary>
    Ingress,

    /// <summary>Only on nodes running a task of the service: the node DNATs straight to a local task, no SNAT.</summary>
    Host,
}

/// <summary>Which tasks an ingress-mode port reaches (kube-proxy's externalTrafficPolicy).</summary>
public enum TrafficPolicy
{
    /// <summary>Any task in the cluster, SNATed to the sandbox so replies come back through it.</summary>
    Cluster,

    /// <summary>Only the receiving node's own tasks, not SNATed: the task sees the client's address.</summary>
    Local,
}

/// <summary>What the task receives ahead of the client's bytes.</summary>
public enum ProxyProtocol
{
    None,

    /// <summary>A PROXY protocol v2 header with the client's address and port.</summary>
    V2,
}
