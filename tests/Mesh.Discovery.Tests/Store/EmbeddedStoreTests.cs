using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Discovery.Tests.Store;

public sealed class EmbeddedStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mesh-store-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private EmbeddedStore Open() => new(_dir, NullLogger<EmbeddedStore>.Instance);

    [Fact]
    public async Task State_survives_a_restart_with_the_same_revision_and_allocations()
    {
        var store = Open();
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1", NetnsPath = "/var/run/netns/t" });
        var before = await store.GetStateAsync();

        var after = await Open().GetStateAsync();
        Assert.Equal(3, after.Revision);
        Assert.Equal(before.Revision, after.Revision);
        Assert.Equal(before.Services.Single().Vips["ingress"], after.Services.Single().Vips["ingress"]);
        Assert.Equal(before.Tasks.Single().Addresses["ingress"], after.Tasks.Single().Addresses["ingress"]);
        Assert.Equal(before.Services.Single().Ports, after.Services.Single().Ports);
    }

    [Fact]
    public async Task A_rejected_request_changes_nothing_not_even_the_revision_or_the_file()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var file = await File.ReadAllTextAsync(Path.Combine(_dir, "cluster-state.json"));
        var before = await store.GetStateAsync();

        await Assert.ThrowsAsync<ConflictException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "web" }));
        await Assert.ThrowsAsync<ValidationException>(() => store.CreateServiceAsync(new ServiceSpec { Name = "x y" }));
        await Assert.ThrowsAsync<NotFoundException>(() => store.RemoveTaskAsync("nope"));

        Assert.Same(before, await store.GetStateAsync());
        Assert.Equal(file, await File.ReadAllTextAsync(Path.Combine(_dir, "cluster-state.json")));
    }

    [Fact]
    public async Task A_daemon_re_registering_unchanged_does_not_move_the_revision()
    {
        var store = Open();
        var first = await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        var again = await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        Assert.Equal(first, again);
        Assert.Equal(1, (await store.GetStateAsync()).Revision);
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.21" });
        Assert.Equal(2, (await store.GetStateAsync()).Revision);
    }

    [Fact]
    public async Task Watch_returns_changes_in_order_after_a_revision_and_wakes_on_a_change()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "b" });

        var since1 = await store.WatchAsync(1, TimeSpan.FromSeconds(1));
        Assert.False(since1.Resync);
        Assert.Equal([new StoreChange(2, StoreObjectKind.Service, "b", false)], since1.Changes);

        var pending = store.WatchAsync(2, TimeSpan.FromSeconds(10));
        Assert.False(pending.IsCompleted);
        await store.RemoveServiceAsync("a");
        var woke = await pending.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal([new StoreChange(3, StoreObjectKind.Service, "a", true)], woke.Changes);

        var idle = await store.WatchAsync(3, TimeSpan.FromMilliseconds(50));
        Assert.Empty(idle.Changes);
        Assert.Equal(3, idle.Revision);
    }

    [Fact]
    public async Task Watch_from_a_revision_the_store_cannot_replay_asks_for_a_resync()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        var restarted = Open(); // history is in memory only
        Assert.True((await restarted.WatchAsync(0, TimeSpan.FromSeconds(1))).Resync);
        Assert.True((await restarted.WatchAsync(99, TimeSpan.FromSeconds(1))).Resync);
    }

    [Fact]
    public async Task Concurrent_creates_never_hand_out_the_same_address_or_mark()
    {
        var store = Open();
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        var creates = Enumerable.Range(0, 100).Select(i => Task.Run(() => store.CreateServiceAsync(new ServiceSpec { Name = $"s{i}", Ports = [new PublishedPort(10_000 + i, 80)] })));
        var services = await Task.WhenAll(creates);
        Assert.Equal(100, services.Select(s => s.FirewallMark).Distinct().Count());
        Assert.Equal(100, services.Select(s => s.Vips["ingress"]).Distinct().Count());
        Assert.Equal(101, (await store.GetStateAsync()).Revision);
    }

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private string Current => Path.Combine(_dir, "cluster-state.json");

    private string LastGood => Current + ".last-good";

    [Fact]
    public async Task The_state_file_and_its_last_good_copy_are_0600_in_a_0700_directory_and_no_temporary_file_is_left()
    {
        var dir = Path.Combine(_dir, "new-state-dir");
        var store = new EmbeddedStore(dir, NullLogger<EmbeddedStore>.Instance);
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "b" });

        var current = Path.Combine(dir, "cluster-state.json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(current));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(current + ".last-good"));
        Assert.False(File.Exists(current + ".tmp"));
        Assert.Equal(["cluster-state.json", "cluster-state.json.last-good"], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_world_readable_state_file_from_an_older_version_is_made_0600_on_load()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        File.SetUnixFileMode(Current, OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        Assert.Equal(1, (await Open().GetStateAsync()).Revision);
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(Current));
    }

    [Fact]
    public async Task A_corrupt_state_file_is_replaced_by_the_last_good_copy_with_a_loud_log_line()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a", Ports = [new PublishedPort(8080, 80)] });
        await store.CreateServiceAsync(new ServiceSpec { Name = "b" });
        var lastGood = await File.ReadAllBytesAsync(LastGood);
        await File.WriteAllTextAsync(Current, "{\"revision\":2,\"services\":[{\"na"); // torn by a broken disk or a hand edit

        var log = new ListLogger();
        var restarted = new EmbeddedStore(_dir, log);
        var state = await restarted.GetStateAsync();
        Assert.Equal(1, state.Revision);
        Assert.Equal(["a"], state.Services.Select(s => s.Name));
        var loud = Assert.Single(log.Entries, e => e.Level == LogLevel.Critical);
        Assert.Contains("UNREADABLE", loud.Message, StringComparison.Ordinal);
        Assert.Contains(LastGood, loud.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Current + ".corrupt"), "the unreadable file is kept for inspection");

        // The next write starts from revision 1 and never makes the corrupt file the last-good copy.
        await restarted.CreateServiceAsync(new ServiceSpec { Name = "c" });
        Assert.Equal(lastGood, await File.ReadAllBytesAsync(LastGood));
        Assert.Equal(["a", "c"], (await Open().GetStateAsync()).Services.Select(s => s.Name));
    }

    [Fact]
    public async Task An_unreadable_state_file_without_a_last_good_copy_stops_the_store_instead_of_starting_empty()
    {
        var store = Open();
        await store.CreateServiceAsync(new ServiceSpec { Name = "a" });
        await File.WriteAllTextAsync(Current, "garbage");
        var e = Assert.Throws<InvalidDataException>(Open);
        Assert.Contains("refusing to start with an empty cluster state", e.Message, StringComparison.Ordinal);
        Assert.Equal("garbage", await File.ReadAllTextAsync(Current)); // left for the operator
    }

    [Fact]
    public async Task Objects_in_the_state_file_that_fail_validation_are_set_aside_and_the_rest_loads()
    {
        var store = Open();
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        await store.AddTaskAsync(new TaskSpec { Service = "web", Node = "n1" });
        var text = await File.ReadAllTextAsync(Current);
        await File.WriteAllTextAsync(Current, text.Replace("\"10.255.0.5\"", "\"10.255.0.5\\n-F\"", StringComparison.Ordinal));

        var state = await Open().GetStateAsync();
        Assert.Equal(["web.1"], state.Tasks.Select(t => t.Name));
        Assert.Equal(["web"], state.Services.Select(s => s.Name));
    }

    private sealed class ListLogger : ILogger<EmbeddedStore>
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}
