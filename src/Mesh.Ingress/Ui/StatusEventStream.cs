using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Ui;

/// <summary>
/// <c>GET /ui/events</c>: server-sent events, one <c>data:</c> line of JSON (<see cref="StatusSnapshot"/>) at the start
/// and on every change the page would show, woken by the store's watch; a comment line as heartbeat when quiet.
/// </summary>
public sealed partial class StatusEventStream(
    IClusterStore store,
    StatusSnapshotBuilder builder,
    SseClientSlots slots,
    StatusPageOptions options,
    ILogger logger)
{
    private static readonly byte[] HeartbeatFrame = ": heartbeat\n\n"u8.ToArray();

    public async Task ServeAsync(HttpContext context, CancellationToken stopping)
    {
        if (!slots.TryTake())
        {
            LogFull(logger, slots.Max, context.Connection.RemoteIpAddress?.ToString() ?? "unix socket");
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = "10";
            await context.Response.WriteAsJsonAsync(
                new ApiError($"the status page serves at most {slots.Max} live viewers at once and all are taken: close one, or retry later"),
                MeshJson.Options, context.RequestAborted).ConfigureAwait(false);
            return;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        var ct = linked.Token;
        try
        {
            context.Response.ContentType = "text/event-stream; charset=utf-8";
            context.Response.Headers.CacheControl = "no-store";
            context.Response.Headers["X-Accel-Buffering"] = "no";
            // The browser reconnects this soon after the stream breaks (a daemon restart).
            await WriteAsync(context, "retry: 1000\n\n"u8.ToArray(), ct).ConfigureAwait(false);
            await StreamAsync(context, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The viewer left or the daemon stops: the stream just ends.
        }
        catch (IOException)
        {
            // The connection broke mid-write: the same.
        }
        finally
        {
            slots.Release();
        }
    }

    private async Task StreamAsync(HttpContext context, CancellationToken ct)
    {
        string? sent = null;
        var quietSince = TimeProvider.System.GetTimestamp();
        var state = ClusterState.Empty;
        while (true)
        {
            string? storeError = null;
            try
            {
                state = await store.GetStateAsync(ct).ConfigureAwait(false);
            }
            catch (StoreUnavailableException e)
            {
                // Keep showing the last state, saying the store is away.
                storeError = e.Message;
            }

            var snapshot = builder.Build(state, storeError);
            // The time of the snapshot is not a change: compare without it.
            var json = JsonSerializer.Serialize(snapshot, MeshJson.Options);
            var content = JsonSerializer.Serialize(snapshot with { At = default }, MeshJson.Options);
            if (content != sent)
            {
                await WriteAsync(context, Encoding.UTF8.GetBytes($"data: {json}\n\n"), ct).ConfigureAwait(false);
                sent = content;
                quietSince = TimeProvider.System.GetTimestamp();
            }
            else if (TimeProvider.System.GetElapsedTime(quietSince) >= options.Heartbeat)
            {
                await WriteAsync(context, HeartbeatFrame, ct).ConfigureAwait(false);
                quietSince = TimeProvider.System.GetTimestamp();
            }

            // A joined daemon's watch on the holder tells the holder which revision it applied (PeerLiveness): a
            // viewer's watch would claim revisions for it, so through a joined store the page rereads instead.
            if (storeError is null && store is not RemoteStore)
            {
                try
                {
                    await store.WatchAsync(state.Revision, options.Recheck, ct).ConfigureAwait(false);
                    continue;
                }
                catch (StoreUnavailableException)
                {
                    // told on the next pass, from GetStateAsync
                }
            }

            await Task.Delay(options.Recheck, ct).ConfigureAwait(false);
        }
    }

    private static async Task WriteAsync(HttpContext context, byte[] frame, CancellationToken ct)
    {
        await context.Response.Body.WriteAsync(frame, ct).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(ct).ConfigureAwait(false);
    }
}
