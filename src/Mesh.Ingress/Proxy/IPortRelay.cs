namespace Mesh.Ingress.Proxy;

/// <summary>One relayed published port (TCP or UDP): its current configuration, replaced as the state changes.</summary>
public interface IPortRelay : IAsyncDisposable
{
    RelayPort Port { get; }

    /// <summary>New backends (or target) for new connections and flows; open ones keep theirs.</summary>
    void Update(RelayPort port);
}
