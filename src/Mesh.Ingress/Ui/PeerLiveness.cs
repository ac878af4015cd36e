using System.Collections.Concurrent;
using System.Globalization;

namespace Mesh.Ingress.Ui;

/// <summary>
/// Which joined daemons are alive, as the store holder sees them: each joined daemon keeps a watch open on the holder
/// (<c>GET /v1/watch</c>, over mutual TLS with its node certificate, whose CN is its node name). A watch in flight means
/// the daemon is up; a request the client abandoned (its process died, so the kernel closed its connection) means it
/// is down at once; a daemon between two requests (it is applying a change) counts as up for <see cref="Grace"/>.
/// The watch's <c>after</c> is the revision that daemon last applied (its reconciler watches from there).
/// </summary>
public sealed class PeerLiveness(TimeProvider clock)
{
    /// <summary>How long a daemon that finished a request and has not come back yet still counts as up.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<string, Peer> _peers = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A request from <paramref name="node"/> started; dispose the result when it ends.</summary>
    public Request Begin(string node, string? watchAfter)
    {
        var peer = _peers.GetOrAdd(node, _ => new Peer());
        lock (peer)
        {
            peer.InFlight++;
            if (long.TryParse(watchAfter, NumberStyles.None, CultureInfo.InvariantCulture, out var applied))
            {
                peer.AppliedRevision = applied;
            }
        }

        return new Request(this, peer);
    }

    /// <summary>What is known of <paramref name="node"/>'s daemon; null when it never called this daemon.</summary>
    public PeerView? Of(string node)
    {
        if (!_peers.TryGetValue(node, out var peer))
        {
            return null;
        }

        lock (peer)
        {
            var alive = peer.InFlight > 0
                || (!peer.LastAborted && peer.LastEnd is { } end && clock.GetUtcNow() - end <= Grace);
            return new PeerView(alive, peer.AppliedRevision);
        }
    }

    private void End(Peer peer, bool aborted)
    {
        lock (peer)
        {
            peer.InFlight--;
            peer.LastEnd = clock.GetUtcNow();
            peer.LastAborted = aborted;
        }
    }

    private sealed class Peer
    {
        public int InFlight;
        public DateTimeOffset? LastEnd;
        public bool LastAborted;
        public long? AppliedRevision;
    }

    public sealed class Request(PeerLiveness owner, object peer)
    {
        private int _ended;

        /// <param name="aborted">The client went away before the answer (its connection closed).</param>
        public void End(bool aborted)
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                owner.End((Peer)peer, aborted);
            }
        }
    }
}

/// <param name="AppliedRevision">The <c>after</c> of its last watch: the revision it had applied then.</param>
public sealed record PeerView(bool Alive, long? AppliedRevision);
