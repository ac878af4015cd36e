using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Store;

/// <summary>
/// A joined daemon's loops (the reconciler's two, DNS, the L7 entry, health and readiness) each watch the holder and
/// then read its state. Through one <see cref="RemoteStore"/> they share one long-poll per revision and one read per
/// change (none when the holder answers the watch with the state); the API's own reads still go to the holder every
/// time. The holder is a real HTTP server that counts what it is asked and answers a watch only when the test says so;
/// by default it behaves as a holder that does not know <c>state=1</c> (it ignores the parameter).
/// </summary>
public sealed class RemoteStoreSharingTests : IDisposable
{
    private readonly JsonTestServer _holder;
    private readonly Uri _url;
    private readonly ConcurrentQueue<string> _asked = new();
    private volatile TaskCompletionSource<long> _watchAnswer = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _revision = 3;
    private volatile bool _answersWithState;

    public RemoteStoreSharingTests()
    {
        _holder = new JsonTestServer(AnswerAsync);
        _url = _holder.Url;
    }

    public void Dispose() => _holder.Dispose();

    private int Asked(string path) => _asked.Count(p => p == path);

    private async Task<string> AnswerAsync(HttpListenerRequest request)
    {
        var path = request.Url!.AbsolutePath;
        _asked.Enqueue(path);
        if (path != "/v1/watch") return JsonSerializer.Serialize(State(), MeshJson.Options);

        var after = long.Parse(request.QueryString["after"]!, System.Globalization.CultureInfo.InvariantCulture);
        var timeout = TimeSpan.FromMilliseconds(long.Parse(request.QueryString["timeoutMs"]!, System.Globalization.CultureInfo.InvariantCulture));
        var revision = Interlocked.Read(ref _revision) != after
            ? Interlocked.Read(ref _revision)
            : await _watchAnswer.Task.WaitAsync(timeout).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : after, TaskScheduler.Default);
        return _answersWithState && request.QueryString["state"] == "1"
            ? JsonSerializer.Serialize(new WatchAnswer(revision, [], Resync: false, revision == after ? null : State()), MeshJson.Options)
            : JsonSerializer.Serialize(new WatchResult(revision, [], Resync: false), MeshJson.Options);
    }

    private ClusterState State() => ClusterState.Empty with { Revision = Interlocked.Read(ref _revision) };

    /// <summary>The holder's revision moves on and every watch waiting past the old one is answered.</summary>
    private void Commit()
    {
        var revision = Interlocked.Increment(ref _revision);
        var answered = _watchAnswer;
        _watchAnswer = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        answered.SetResult(revision);
    }

    private IClusterStore Joined() => new RemoteStore(new HttpClient { BaseAddress = _url });

    private async Task UntilAsked(string path, int times)
    {
        for (var i = 0; i < 500 && Asked(path) < times; i++)
        {
            await Task.Delay(10);
        }

        Assert.Equal(times, Asked(path));
    }

    [Fact]
    public async Task Loops_following_the_holder_share_one_watch_and_one_read_per_change()
    {
        var store = Joined();
        var first = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => store.GetStateAsync(0)));
        Assert.All(first, s => Assert.Equal(3, s.Revision));
        Assert.Equal(1, Asked("/v1/state"));

        var watches = Enumerable.Range(0, 6).Select(_ => store.WatchAsync(3, TimeSpan.FromSeconds(20))).ToList();
        await UntilAsked("/v1/watch", 1);
        await Task.Delay(100); // the other five had time to ask for their own (they must not)
        Assert.Equal(1, Asked("/v1/watch"));
        Commit();
        var results = await Task.WhenAll(watches);
        Assert.All(results, r => Assert.Equal(4, r.Revision));

        var next = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => store.GetStateAsync(4)));
        Assert.All(next, s => Assert.Equal(4, s.Revision));
        Assert.Equal(2, Asked("/v1/state"));
        Assert.Equal(1, Asked("/v1/watch"));
    }

    [Fact]
    public async Task A_watch_answered_with_the_state_leaves_the_loops_no_read_to_make()
    {
        _answersWithState = true;
        var store = Joined();
        Assert.Equal(3, (await store.GetStateAsync(0)).Revision);
        var watches = Enumerable.Range(0, 6).Select(_ => store.WatchAsync(3, TimeSpan.FromSeconds(20))).ToList();
        await UntilAsked("/v1/watch", 1);
        Commit();
        Assert.All(await Task.WhenAll(watches), r => Assert.Equal(4, r.Revision));

        var next = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => store.GetStateAsync(4)));
        Assert.All(next, s => Assert.Equal(4, s.Revision));
        Assert.Equal(1, Asked("/v1/state")); // the first read only
        Assert.Equal(1, Asked("/v1/watch"));

        // A watch that times out carries no state: the next change is read as before.
        Assert.Equal(4, (await store.WatchAsync(4, TimeSpan.FromMilliseconds(200))).Revision);
        Assert.Equal(4, (await store.GetStateAsync(4)).Revision);
        Assert.Equal(1, Asked("/v1/state"));
    }

    [Fact]
    public async Task The_state_now_is_always_read_from_the_holder()
    {
        var store = Joined();
        Assert.Equal(3, (await store.GetStateAsync(0)).Revision);
        Interlocked.Increment(ref _revision); // a change no watch of this store has seen

        // What the API answers is the holder's state at the call, not the newest one this store read.
        Assert.Equal(4, (await store.GetStateAsync()).Revision);
        Assert.Equal(4, (await store.GetStateAsync()).Revision);
        Assert.Equal(3, Asked("/v1/state"));

        // A loop that asks for a revision past the newest read gets a read of its own.
        Interlocked.Increment(ref _revision);
        Assert.Equal(5, (await store.GetStateAsync(5)).Revision);
        Assert.Equal(4, Asked("/v1/state"));
    }

    [Fact]
    public async Task A_watch_with_a_shorter_timeout_than_the_shared_poll_ends_at_its_own_deadline()
    {
        var store = Joined();
        var longer = store.WatchAsync(3, TimeSpan.FromSeconds(20));
        await UntilAsked("/v1/watch", 1);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var shorter = await store.WatchAsync(3, TimeSpan.FromMilliseconds(300));
        var waited = System.Diagnostics.Stopwatch.GetElapsedTime(started);

        Assert.Equal(3, shorter.Revision); // no change
        Assert.InRange(waited, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
        Assert.False(longer.IsCompleted);
        Assert.Equal(1, Asked("/v1/watch"));

        Commit();
        Assert.Equal(4, (await longer).Revision);
    }

    [Fact]
    public async Task A_caller_that_stops_waiting_leaves_the_shared_watch_to_the_others()
    {
        var store = Joined();
        using var stop = new CancellationTokenSource();
        var leaving = store.WatchAsync(3, TimeSpan.FromSeconds(20), stop.Token);
        var staying = store.WatchAsync(3, TimeSpan.FromSeconds(20));
        await UntilAsked("/v1/watch", 1);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving);

        Commit();
        Assert.Equal(4, (await staying).Revision);
        Assert.Equal(1, Asked("/v1/watch"));
    }
}
