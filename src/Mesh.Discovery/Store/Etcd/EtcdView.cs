using System.Collections.Immutable;
using Google.Protobuf;
using Mesh.Discovery.Model;

namespace Mesh.Discovery.Store.Etcd;

/// <summary>One key under the store's prefix as last seen: its revisions, and for an object its JSON and the validated object (null when set aside).</summary>
internal sealed record EtcdEntry(long CreateRevision, long ModRevision, string? Json, object? Decoded);

/// <summary>
/// What a store holds from one full read of its prefix plus every watch event since, key by key: the events are
/// applied to the last view (only the keys they name are decoded and validated), not re-read. Immutable: the
/// watcher publishes a new view per batch of events, readers take whichever is current.
/// </summary>
internal sealed class EtcdView
{
    private readonly EtcdLayout _layout;
    private EtcdSnapshot? _snapshot;

    private EtcdView(EtcdLayout layout, long revision, ImmutableDictionary<string, EtcdEntry> keys)
    {
        _layout = layout;
        Revision = revision;
        Keys = keys;
    }

    /// <summary>Every event up to this revision is applied.</summary>
    public long Revision { get; }

    /// <summary>Every key under the prefix (objects, including those set aside, alive keys, the fence).</summary>
    public ImmutableDictionary<string, EtcdEntry> Keys { get; }

    public static EtcdView Read(EtcdLayout layout, long revision, IEnumerable<Mvccpb.KeyValue> kvs)
    {
        var keys = ImmutableDictionary.CreateBuilder<string, EtcdEntry>(StringComparer.Ordinal);
        foreach (var kv in kvs)
        {
            var key = kv.Key.ToStringUtf8();
            keys[key] = layout.Entry(key, kv);
        }

        return new EtcdView(layout, revision, keys.ToImmutable());
    }

    /// <summary>The view after <paramref name="events"/> (one watch answer: whole revisions, in order).</summary>
    public EtcdView Apply(IEnumerable<Mvccpb.Event> events)
    {
        var keys = Keys.ToBuilder();
        var revision = Revision;
        foreach (var e in events)
        {
            var key = e.Kv.Key.ToStringUtf8();
            if (e.Type == Mvccpb.Event.Types.EventType.Delete)
            {
                keys.Remove(key);
            }
            else if (!keys.TryGetValue(key, out var old) || old.ModRevision != e.Kv.ModRevision)
            {
                keys[key] = _layout.Entry(key, e.Kv);
            }

            revision = Math.Max(revision, e.Kv.ModRevision);
        }

        return new EtcdView(_layout, revision, keys.ToImmutable());
    }

    /// <summary>The state of this view (built once per view, on first use: O(objects), no decoding).</summary>
    public EtcdSnapshot Snapshot() => _snapshot ??= _layout.Snapshot(this);
}

/// <summary>A view as the cluster state: all valid objects (what writes see), what readers see, and what the write diff needs.</summary>
internal sealed record EtcdSnapshot(long FenceModRevision, ClusterState Full, ClusterState Visible, Dictionary<string, string> Objects, HashSet<object> Decoded)
{
    /// <summary>The same snapshot reported at <paramref name="revision"/> (etcd's revision when it was verified current).</summary>
    public EtcdSnapshot At(long revision) => Full.Revision == revision ? this : this with { Full = Full with { Revision = revision }, Visible = Visible with { Revision = revision } };
}

/// <summary>The key layout under the prefix, and how a key's value becomes a validated object.</summary>
internal sealed class EtcdLayout(string prefix, StoredObjectValidator validator)
{
    public const string NetworksDir = "networks/";
    public const string NodesDir = "nodes/";
    public const string ServicesDir = "services/";
    public const string TasksDir = "tasks/";
    public const string AliveDir = "alive/";
    public const string FenceName = "revision";

    public string Prefix => prefix;

    public ByteString Key(string key) => ByteString.CopyFromUtf8(key);

    public ByteString PrefixKey => ByteString.CopyFromUtf8(prefix);

    public ByteString PrefixEnd => RangeEnd(prefix);

    /// <summary>The smallest key greater than every key starting with <paramref name="start"/> (clientv3.GetPrefixRangeEnd).</summary>
    public static ByteString RangeEnd(string start)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(start);
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            if (bytes[i] < 0xff)
            {
                bytes[i]++;
                return ByteString.CopyFrom(bytes.AsSpan(0, i + 1));
            }
        }

        return ByteString.CopyFrom(0);
    }

    /// <summary>
    /// Each object is decoded and validated on its own: one that fails is set aside (logged, counted) and left in etcd
    /// untouched (its entry has no decoded object, so no write deletes or rewrites it); the rest converges.
    /// </summary>
    public EtcdEntry Entry(string key, Mvccpb.KeyValue kv)
    {
        var rest = key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : "";
        object? decoded = null;
        string? json = null;
        if (rest.StartsWith(NetworksDir, StringComparison.Ordinal))
        {
            json = kv.Value.ToStringUtf8();
            decoded = validator.Decode<OverlayNetwork>(key, json, rest[NetworksDir.Length..]);
        }
        else if (rest.StartsWith(NodesDir, StringComparison.Ordinal))
        {
            json = kv.Value.ToStringUtf8();
            decoded = validator.Decode<ClusterNode>(key, json, rest[NodesDir.Length..]);
        }
        else if (rest.StartsWith(ServicesDir, StringComparison.Ordinal))
        {
            json = kv.Value.ToStringUtf8();
            decoded = validator.Decode<ClusterService>(key, json, rest[ServicesDir.Length..]);
        }
        else if (rest.StartsWith(TasksDir, StringComparison.Ordinal))
        {
            json = kv.Value.ToStringUtf8();
            decoded = validator.Decode<ServiceTask>(key, json, rest[TasksDir.Length..]);
        }

        return new EtcdEntry(kv.CreateRevision, kv.ModRevision, json, decoded);
    }

    public EtcdSnapshot Snapshot(EtcdView view)
    {
        var networks = new List<(long, OverlayNetwork)>();
        var nodes = new List<(long, ClusterNode)>();
        var services = new List<(long, ClusterService)>();
        var tasks = new List<(long, ServiceTask)>();
        var alive = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var objects = new Dictionary<string, string>(StringComparer.Ordinal);
        long fence = 0;
        foreach (var (key, entry) in view.Keys)
        {
            var rest = key[prefix.Length..];
            if (rest == FenceName)
            {
                fence = entry.ModRevision;
            }
            else if (rest.StartsWith(AliveDir, StringComparison.Ordinal))
            {
                alive.Add(rest[AliveDir.Length..]);
            }

            switch (entry.Decoded)
            {
                case OverlayNetwork n:
                    networks.Add((entry.CreateRevision, n));
                    break;
                case ClusterNode n:
                    nodes.Add((entry.CreateRevision, n));
                    break;
                case ClusterService s:
                    services.Add((entry.CreateRevision, s));
                    break;
                case ServiceTask t:
                    tasks.Add((entry.CreateRevision, t));
                    break;
                default:
                    continue;
            }

            objects[key] = entry.Json!;
        }

        static T[] InOrder<T>(List<(long Created, T Item)> items) => items.OrderBy(i => i.Created).Select(i => i.Item).ToArray();
        var full = new ClusterState
        {
            Revision = view.Revision,
            Networks = [.. ClusterState.Empty.Networks, .. InOrder(networks).Where(n => !ClusterState.Empty.Networks.Any(d => d.Name == n.Name))],
            Nodes = InOrder(nodes),
            Services = InOrder(services),
            Tasks = InOrder(tasks),
        };
        // What readers get is also consistent across objects (no two services with one port, mark or address...).
        // Writes still see every valid object, so no allocation is handed out twice.
        var consistent = validator.Consistent(full);
        var visible = consistent.Tasks.All(t => alive.Contains(t.Node))
            ? consistent
            : consistent with { Tasks = consistent.Tasks.Select(t => alive.Contains(t.Node) ? t : t with { State = TaskState.NodeDown }).ToArray() };
        var decoded = new HashSet<object>(ReferenceEqualityComparer.Instance);
        decoded.UnionWith(full.Networks);
        decoded.UnionWith(full.Nodes);
        decoded.UnionWith(full.Services);
        decoded.UnionWith(full.Tasks);
        return new EtcdSnapshot(fence, full, visible, objects, decoded);
    }
}
