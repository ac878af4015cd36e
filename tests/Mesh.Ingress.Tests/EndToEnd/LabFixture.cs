namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>The lab tests share one machine-wide lab: their classes run one after the other.</summary>
[CollectionDefinition("Lab")]
public sealed class LabCollection;

/// <summary>One 3-node lab (nftables dataplane, web.1/web.3 on node 1, web.2 on node 2, none on node 3) for the whole class.</summary>
public sealed class LabFixture() : LabFixtureBase();

/// <summary>The same lab on etcd (one member, 3 s leases).</summary>
public sealed class EtcdLabFixture() : LabFixtureBase("--store", "etcd", "--lease-ttl", "3");

public abstract class LabFixtureBase(params string[] extra) : IAsyncLifetime
{
    public string[] UpArguments { get; } = ["lab", "up", "--nodes", "3", "--replicas", "3", "--dataplane", "nftables", .. extra];

    public static readonly string[] NodeAddresses = ["198.18.0.11", "198.18.0.12", "198.18.0.13"];

    public string? UpOutput { get; private set; }

    /// <summary>The lab's names are machine-wide: one user at a time (the load tests take the same lock).</summary>
    private FileStream? _lock;

    public async Task InitializeAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }

        _lock = await LabLock.AcquireAsync();
        await Shell.MeshAsync("lab", "down");
        var up = await Shell.MeshAsync(UpArguments);
        UpOutput = $"exit {up.ExitCode}\n{up.Stdout}\n{up.Stderr}";
        if (up.ExitCode != 0)
        {
            throw new InvalidOperationException("mesh lab up failed: " + UpOutput);
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.MeshAsync("lab", "down");
        }

        _lock?.Dispose();
    }
}
