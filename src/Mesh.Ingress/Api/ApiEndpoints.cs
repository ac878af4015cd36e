using System.Globalization;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Trace;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Ingress.Api;

/// <summary>
/// The HTTP+JSON API (unix socket by default). Every write goes through the store, which validates first:
/// a rejected request answers 400/404/409 naming what is wrong and changes nothing.
/// </summary>
public static class ApiEndpoints
{
    private static readonly TimeSpan MaxWatch = TimeSpan.FromSeconds(60);

    public static void MapMeshApi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");

        v1.MapGet("/info", (NodeStatus status) => Json(new NodeInfo(status.Node, status.Store, status.Dataplane, status.DataplaneReason, status.AppliedRevision, status.LastError, status.LastSync)));
        v1.MapGet("/state", Handle(async (IClusterStore store, HttpContext ctx) => Json(await store.GetStateAsync(ctx.RequestAborted))));
        v1.MapGet("/watch", Handle(async (IClusterStore store, HttpContext ctx) =>
        {
            var after = QueryLong(ctx, "after", 0);
            var timeout = TimeSpan.FromMilliseconds(Math.Clamp(QueryLong(ctx, "timeoutMs", 30_000), 0, (long)MaxWatch.TotalMilliseconds));
            var withState = QueryLong(ctx, "state", 0) switch
            {
                0 => false,
                1 => true,
                _ => throw new ValidationException("state", "must be 0 or 1"),
            };
            var result = await store.WatchAsync(after, timeout, ctx.RequestAborted);
            if (!withState)
            {
                return Json(result);
            }

            // Read after the watch answered: at least as new as the revision it reports.
            var changed = result.Revision != after || result.Resync;
            var state = changed ? await store.GetStateAsync(ctx.RequestAborted) : null;
            return Json(new WatchAnswer(result.Revision, result.Changes, result.Resync, state));
        }));

        v1.MapGet("/networks", Handle(async (IClusterStore store, HttpContext ctx) => Json((await store.GetStateAsync(ctx.RequestAborted)).Networks)));
        v1.MapPost("/networks", Handle(async (IClusterStore store, HttpContext ctx) =>
            Created(await store.CreateNetworkAsync(await BodyAsync<NetworkSpec>(ctx), ctx.RequestAborted))));

        v1.MapGet("/nodes", Handle(async (IClusterStore store, HttpContext ctx) => Json((await store.GetStateAsync(ctx.RequestAborted)).Nodes)));
        v1.MapPost("/nodes", Handle(async (IClusterStore store, HttpContext ctx) =>
            Json(await store.RegisterNodeAsync(await BodyAsync<NodeSpec>(ctx), ctx.RequestAborted))));
        v1.MapDelete("/nodes/{name}", Handle(async (IClusterStore store, HttpContext ctx) =>
        {
            await store.RemoveNodeAsync((string)ctx.Request.RouteValues["name"]!, ctx.RequestAborted);
            return Results.NoContent();
        }));

        v1.MapGet("/services", Handle(async (IClusterStore store, HttpContext ctx) => Json((await store.GetStateAsync(ctx.RequestAborted)).Services)));
        v1.MapGet("/services/{name}", Handle(async (IClusterStore store, HttpContext ctx) =>
        {
            var name = (string)ctx.Request.RouteValues["name"]!;
            var state = await store.GetStateAsync(ctx.RequestAborted);
            var service = state.Services.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new NotFoundException($"service '{name}' does not exist");
            return Json(new ServiceDetail(service, state.Tasks.Where(t => t.Service == service.Name).OrderBy(t => t.Name, StringComparer.Ordinal).ToArray())
            {
                Health = service.HealthCheck is null ? null : ctx.RequestServices.GetService<HealthChecks.TaskHealthMonitor>()?.ServiceView(service.Name),
            });
        }));
        v1.MapPost("/services", Handle(async (IClusterStore store, HttpContext ctx) =>
            Created(await store.CreateServiceAsync(await BodyAsync<ServiceSpec>(ctx), ctx.RequestAborted))));
        v1.MapPatch("/services/{name}", Handle(async (IClusterStore store, HttpContext ctx) =>
            Json(await store.UpdateServiceAsync((string)ctx.Request.RouteValues["name"]!, await BodyAsync<ServiceUpdate>(ctx), ctx.RequestAborted))));
        v1.MapDelete("/services/{name}", Handle(async (IClusterStore store, HttpContext ctx) =>
        {
            await store.RemoveServiceAsync((string)ctx.Request.RouteValues["name"]!, ctx.RequestAborted);
            return Results.NoContent();
        }));

        v1.MapGet("/tasks", Handle(async (IClusterStore store, HttpContext ctx) =>
        {
            var service = ctx.Request.Query["service"].FirstOrDefault();
            var node = ctx.Request.Query["node"].FirstOrDefault();
            var tasks = (await store.GetStateAsync(ctx.RequestAborted)).Tasks
                .Where(t => (service is null || t.Service == service) && (node is null || t.Node == node));
            return Json(tasks.OrderBy(t => t.Name, StringComparer.Ordinal).ToArray());
        }));
        v1.MapPost("/tasks", Handle(async (IClusterStore store, HttpContext ctx) =>
        {
            var spec = await BodyAsync<TaskSpec>(ctx);
            TaskPathChecks.Check(spec, ctx.RequestServices);
            return Created(await store.AddTaskAsync(spec, ctx.RequestAborted));
        }));
        v1.MapDelete("/tasks/{name}", Handle(async (IClusterStore store, HttpContext ctx) =>
        {
            await store.RemoveTaskAsync((string)ctx.Request.RouteValues["name"]!, ctx.RequestAborted);
            return Results.NoContent();
        }));
        // A starting task's node reports its outcome: {"state": "running"} or {"state": "failed"}.
        v1.MapPatch("/tasks/{name}", Handle(async (IClusterStore store, HttpContext ctx) =>
            Json(await store.UpdateTaskAsync((string)ctx.Request.RouteValues["name"]!, await BodyAsync<TaskUpdate>(ctx), ctx.RequestAborted))));

        // This node's health verdicts (each node probes from its own sandbox; ask a node's API for its view).
        v1.MapGet("/health", (HttpContext ctx) => ctx.RequestServices.GetService<HealthChecks.TaskHealthMonitor>() is { } monitor
            ? Json(monitor.View())
            : Error(StatusCodes.Status404NotFound, new ApiError("this daemon runs no health checks")));

        v1.MapTrace();

        app.MapFallback(() => Error(StatusCodes.Status404NotFound, new ApiError("no such API endpoint")));
    }

    /// <summary>Maps the store's exceptions to status codes, one place for every endpoint.</summary>
    private static Func<IClusterStore, HttpContext, Task<IResult>> Handle(Func<IClusterStore, HttpContext, Task<IResult>> handler) =>
        async (store, ctx) =>
        {
            try
            {
                return await handler(store, ctx);
            }
            // Messages quote client input (a name from the URL, a property name): Printable keeps control
            // characters out of every error, whichever layer wrote the message (the fuzz run found "web\t" and a NUL raw).
            catch (ValidationException e)
            {
                return Error(StatusCodes.Status400BadRequest, new ApiError(Printable(e.Message, 1000), Printable(e.Field, 200)));
            }
            catch (BodyTooLargeException e)
            {
                // Close the connection rather than let the server drain (read and discard) the rest of a huge body.
                ctx.Response.Headers.Connection = "close";
                return Error(StatusCodes.Status413PayloadTooLarge, new ApiError(e.Message, "body"));
            }
            catch (NotFoundException e)
            {
                return Error(StatusCodes.Status404NotFound, new ApiError(Printable(e.Message, 1000)));
            }
            catch (ConflictException e)
            {
                return Error(StatusCodes.Status409Conflict, new ApiError(Printable(e.Message, 1000)));
            }
            catch (StoreUnavailableException e)
            {
                return Error(StatusCodes.Status503ServiceUnavailable, new ApiError(Printable(e.Message, 1000)));
            }
        };

    private static async Task<T> BodyAsync<T>(HttpContext ctx)
    {
        if (ctx.Request.ContentLength == 0)
        {
            throw new ValidationException("body", "is empty: send a JSON object");
        }

        // Refused before reading when the length is declared; otherwise read at most one byte past the cap.
        if (ctx.Request.ContentLength > Limits.MaxRequestBodyBytes)
        {
            throw new BodyTooLargeException(ctx.Request.ContentLength.Value);
        }

        var body = await ReadBoundedAsync(ctx.Request.Body, ctx.RequestAborted);
        try
        {
            return JsonSerializer.Deserialize<T>(body.Span, MeshJson.Options)
                ?? throw new ValidationException("body", "must be a JSON object, not null");
        }
        catch (JsonException e)
        {
            throw new ValidationException(FieldOf(e.Path), JsonErrorText.Describe(e));
        }
    }

    private static async Task<ReadOnlyMemory<byte>> ReadBoundedAsync(Stream body, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > Limits.MaxRequestBodyBytes)
                {
                    throw new BodyTooLargeException(null);
                }

                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, Limits.MaxRequestBodyBytes + 1));
            }

            var read = await body.ReadAsync(buffer.AsMemory(length), ct);
            if (read == 0)
            {
                return buffer.AsMemory(0, length);
            }

            length += read;
        }
    }

    /// <summary>A request body over <see cref="Limits.MaxRequestBodyBytes"/>: 413.</summary>
    private sealed class BodyTooLargeException(long? length) : Exception(
        string.Create(CultureInfo.InvariantCulture, $"the request body{(length is { } l ? $" ({l} bytes)" : "")} is larger than the {Limits.MaxRequestBodyBytes} bytes the API accepts"));

    /// <summary>
    /// The JSON path of the bad member, as the error's field: "body" when there is none. An unknown property named
    /// "" has the path "$." (found by the API fuzz run: it gave an empty field).
    /// </summary>
    private static string FieldOf(string? path)
    {
        var field = (path ?? "").TrimStart('$').TrimStart('.');
        return field.Length == 0 ? "body" : field;
    }

    /// <summary>An error message or field quoting client input: bounded, control characters escaped (as Validate does for values).</summary>
    private static string Printable(string value, int max)
    {
        var s = value.Length > max ? value[..max] + "…" : value;
        return string.Concat(s.Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString()));
    }

    private static long QueryLong(HttpContext ctx, string name, long fallback)
    {
        var text = ctx.Request.Query[name].FirstOrDefault();
        if (text is null)
        {
            return fallback;
        }

        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ValidationException(name, $"'{text}' is not an integer");
    }

    private static IResult Json<T>(T value) => Results.Json(value, MeshJson.Options);

    private static IResult Created<T>(T value) => Results.Json(value, MeshJson.Options, statusCode: StatusCodes.Status201Created);

    private static IResult Error(int status, ApiError error) => Results.Json(error, ErrorJson, statusCode: status);

    /// <summary>
    /// Error bodies are read by people (curl, logs): apostrophes and non-ASCII letters written as they are, not as
    /// \u0027. Safe here: the body is served as application/json (never sniffed as HTML by a browser), JSON's own
    /// syntax (quotes, backslashes, control characters) is still escaped, and the messages are bounded and
    /// control-free (<see cref="Printable"/>). Everything else keeps the default, stricter encoder.
    /// </summary>
    private static readonly JsonSerializerOptions ErrorJson = new(MeshJson.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}

public sealed record NodeInfo(string Node, string Store, string Dataplane, string? DataplaneReason, long AppliedRevision, string? LastError, DateTimeOffset? LastSync);

public sealed record ServiceDetail(ClusterService Service, IReadOnlyList<ServiceTask> Tasks)
{
    /// <summary>With a health check: the answering node's verdicts on the tasks, and whether it fails open.</summary>
    public HealthChecks.ServiceHealthView? Health { get; init; }
}
