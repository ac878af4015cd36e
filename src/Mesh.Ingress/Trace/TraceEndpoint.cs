using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Kernel;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Ingress.Trace;

/// <summary>
/// <c>GET /v1/trace?proto=tcp|udp&amp;addr=IP&amp;port=N[&amp;from=IP]</c>: where a new connection to this node would go,
/// read from this node's kernel; <c>proto=http&amp;…&amp;host=H&amp;path=/P</c>: where an HTTP request would go, the kernel's
/// host rules and then the running L7 entry's route and cluster. Read-only, behind the same listeners and
/// authentication as the rest of the API.
/// </summary>
public static class TraceEndpoint
{
    private static readonly HashSet<string> Parameters = new(StringComparer.Ordinal) { "proto", "addr", "port", "from", "host", "path" };

    public static void MapTrace(this RouteGroupBuilder v1) => v1.MapGet("/trace", async (HttpContext ctx) =>
    {
        try
        {
            foreach (var (key, values) in ctx.Request.Query)
            {
                if (!Parameters.Contains(key))
                {
                    throw new ValidationException(Validate.Printable(key), "is not a parameter of /v1/trace (proto, addr, port, from, host, path)");
                }

                if (values.Count > 1)
                {
                    throw new ValidationException(key, "is given more than once");
                }
            }

            var q = ctx.Request.Query;
            var http = string.Equals(q["proto"].FirstOrDefault(), "http", StringComparison.OrdinalIgnoreCase);
            var httpRequest = http ? HttpTraceRequest.Parse(q["addr"].FirstOrDefault(), q["port"].FirstOrDefault(), q["host"].FirstOrDefault(), q["path"].FirstOrDefault(), q["from"].FirstOrDefault()) : null;
            var request = httpRequest?.Connection ?? TraceRequest.Parse(q["proto"].FirstOrDefault(), q["addr"].FirstOrDefault(), q["port"].FirstOrDefault(), q["from"].FirstOrDefault());
            foreach (var key in (string[])["host", "path"])
            {
                if (!http && q.ContainsKey(key))
                {
                    throw new ValidationException(key, "is a parameter of proto=http only");
                }
            }

            if (ctx.RequestServices.GetService<NodeTracer>() is not { } tracer)
            {
                return Results.Json(new ApiError("this API serves no node: tracing reads a daemon's kernel"), MeshJson.Options, statusCode: StatusCodes.Status501NotImplemented);
            }

            var result = httpRequest is null
                ? await tracer.TraceAsync(request, ctx.RequestAborted)
                : await tracer.TraceHttpAsync(httpRequest, ctx.RequestAborted);
            return Results.Json(result, MeshJson.Options);
        }
        catch (ValidationException e)
        {
            return Results.Json(new ApiError(e.Message, e.Field), MeshJson.Options, statusCode: StatusCodes.Status400BadRequest);
        }
        catch (CommandFailedException e)
        {
            // The summary only: a tool's output stays in the node's log.
            return Results.Json(new ApiError($"reading the kernel failed: {e.Summary}"), MeshJson.Options, statusCode: StatusCodes.Status500InternalServerError);
        }
    });
}
