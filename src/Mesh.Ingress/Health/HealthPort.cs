using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Microsoft.AspNetCore.Http;

namespace Mesh.Ingress.Health;

/// <summary>
/// <c>--health-port</c> (10256, kube-proxy's healthz port): <c>GET /services/NAME</c> on the node's underlay address
/// answers 200 with the number of the service's tasks running on this node, 503 when there are none (404: no such
/// service), so an external load balancer sends <c>mode=host</c> and <c>traffic=local</c> clients only to nodes that
/// can answer them. It says nothing but counts, so it needs no token (a load balancer has none).
/// </summary>
public static class HealthPort
{
    public const int DefaultPort = 10256;

    public static Task AnswerAsync(HttpContext ctx, LocalTaskCounts counts, string node)
    {
        const string prefix = "/services/";
        var path = ctx.Request.Path.Value ?? "";
        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
        {
            ctx.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return Task.CompletedTask;
        }

        if (!path.StartsWith(prefix, StringComparison.Ordinal) || !Validate.IsLabel(path[prefix.Length..]))
        {
            ctx.Response.StatusCode = StatusCodes.Status404NotFound;
            return ctx.Response.WriteAsJsonAsync(new ApiError("this is the health port: GET /services/NAME"), MeshJson.Options);
        }

        var service = path[prefix.Length..];
        if (counts.Known && counts.Of(service) is null)
        {
            ctx.Response.StatusCode = StatusCodes.Status404NotFound;
            return ctx.Response.WriteAsJsonAsync(new ApiError($"service '{service}' does not exist"), MeshJson.Options);
        }

        var local = counts.Of(service) ?? 0;
        ctx.Response.StatusCode = local > 0 ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        return ctx.Response.WriteAsJsonAsync(new ServiceHealthAnswer(service, node, local), MeshJson.Options);
    }
}

/// <summary>The health port's answer (kube-proxy's <c>localEndpoints</c>).</summary>
public sealed record ServiceHealthAnswer(string Service, string Node, int LocalTasks);
