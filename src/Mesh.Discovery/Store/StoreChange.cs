using Mesh.Discovery.Model;

namespace Mesh.Discovery.Store;

public enum StoreObjectKind
{
    Network,
    Node,
    Service,
    Task,
}

/// <summary>One revisioned change: an object put (created or replaced) or deleted.</summary>
public sealed record StoreChange(long Revision, StoreObjectKind Kind, string Name, bool Deleted);

/// <summary>
/// The answer to a watch from a revision: the changes after it, or <see cref="Resync"/> when the
/// store no longer holds that history and the watcher must re-read the whole state.
/// </summary>
public sealed record WatchResult(long Revision, IReadOnlyList<StoreChange> Changes, bool Resync);

/// <summary>
/// A watch answered with the state after it (<c>GET /v1/watch?…&amp;state=1</c>, asked by a joined daemon): the loops
/// that follow the holder read the state after every change, and this spares that read its own round trip. Without a
/// change (the watch timed out) there is no state.
/// </summary>
public sealed record WatchAnswer(long Revision, IReadOnlyList<StoreChange> Changes, bool Resync, ClusterState? State);
