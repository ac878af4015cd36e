namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>One 3-node lab (nftables dataplane, web.1/web.3 on node 1, web.2 on node 2, none on node 3) for the whole class.</summary>
public sealed class LabFixture : IAsyncLifetime
{
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
        var up = await Shell.MeshAsync("lab", "up", "--nodes", "3", "--replicas", "3", "--dataplane", "nftables");
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
