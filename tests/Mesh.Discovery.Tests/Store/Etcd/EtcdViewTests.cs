using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Discovery.Store.Etcd;
using Mesh.Discovery.Tests.Store.Contract;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>
/// The store keeps what it read and applies the watch's events to it: an object nobody changed is the very instance
/// read before (not decoded again), a change made by another daemon is seen at once, and history lost to compaction
/// means one full read again.
/// </summary>
[RequiresEtcd]
public sealed class EtcdViewTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    private static EtcdStoreOptions Options(Uri endpoint, string prefix) => new()
    {
        Endpoints = [endpoint],
        Prefix = prefix,
        RequestTimeout = TimeSpan.FromSeconds(2),
        TransportRetries = 1,
        TransportRetryDelay = TimeSpan.FromMilliseconds(50),
    };

    [StoreFact]
    public async Task A_change_by_another_daemon_is_applied_to_the_last_state_and_the_rest_is_not_decoded_again()
    {
        var prefix = $"/mesh-view-{Guid.NewGuid():N}/";
        await using var reader = new EtcdStore(Options(fixture.Etcd!.ClientUrl, prefix));
        await using var writer = new EtcdStore(Options(fixture.Etcd!.ClientUrl, prefix));
        await writer.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await writer.CreateServiceAsync(new ServiceSpec { Name = "b" });
        var first = await SettledAsync(reader);

        await writer.CreateServiceAsync(new ServiceSpec { Name = "c" });
        var second = await reader.GetStateAsync(); // no wait, no retry: a read right after another daemon's write sees it
        Assert.Equal(["a", "b", "c"], second.Services.Select(s => s.Name));
        Assert.Same(first.Services[0], second.Services[0]);
        Assert.Same(first.Services[1], second.Services[1]);

        await writer.RemoveServiceAsync("a");
        var third = await reader.GetStateAsync(); // a delete alone (fewer keys) is seen too
        Assert.Equal(["b", "c"], third.Services.Select(s => s.Name));
        Assert.Same(second.Services[2], third.Services[1]);
    }

    [StoreFact]
    public async Task History_compacted_while_the_stream_was_down_means_one_full_read_and_nothing_lost()
    {
        var prefix = $"/mesh-view-{Guid.NewGuid():N}/";
        using var proxy = new CuttableProxy(fixture.Etcd!.ClientPort);
        await using var reader = new EtcdStore(Options(proxy.Url, prefix));
        await using var writer = new EtcdStore(Options(fixture.Etcd!.ClientUrl, prefix));
        await writer.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await SettledAsync(reader);

        proxy.Hold();
        proxy.CutAll(); // the reader's stream drops and cannot come back while these happen
        await writer.CreateServiceAsync(new ServiceSpec { Name = "made-while-cut" });
        await writer.RemoveServiceAsync("a");
        await writer.CompactAsync((await writer.GetStateAsync()).Revision);
        proxy.Release();

        var after = await SettledAsync(reader);
        Assert.Equal(["made-while-cut"], after.Services.Select(s => s.Name));

        // Watching again: the next change is applied to the state read at the resync.
        await writer.CreateServiceAsync(new ServiceSpec { Name = "next" });
        var next = await reader.GetStateAsync();
        Assert.Equal(["made-while-cut", "next"], next.Services.Select(s => s.Name));
        Assert.Same(after.Services[0], next.Services[0]);
    }

    /// <summary>The state once the store serves it from its watched view (two reads in a row give the same instances).</summary>
    private static async Task<ClusterState> SettledAsync(IClusterStore store)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        var last = await store.GetStateAsync();
        while (true)
        {
            await Task.Delay(50);
            var state = await store.GetStateAsync();
            if (state.Services.Count == last.Services.Count && state.Services.Zip(last.Services).All(p => ReferenceEquals(p.First, p.Second)))
            {
                return state;
            }

            Assert.True(DateTime.UtcNow < deadline, "the store never served reads from its watched view");
            last = state;
        }
    }
}
