using System.Diagnostics;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Ingress.Telemetry;

/// <summary>
/// A "Mesh" span around every request to the daemon's listeners (API, <c>/metrics</c>), named
/// <c>METHOD route</c> as OpenTelemetry's HTTP conventions name server spans, with the method, path, route, status
/// and the revision this node had applied when the request came. Registered as a startup filter so it wraps
/// everything the host adds after it, authentication included (a 401 is traced too).
/// </summary>
public static class RequestTracing
{
    public const string SpanName = "mesh.api.request";

    internal sealed class StartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            var telemetry = app.ApplicationServices.GetRequiredService<MeshTelemetry>();
            var status = app.ApplicationServices.GetService<NodeStatus>();
            app.Use((context, nextMiddleware) => TraceAsync(telemetry.Activities, status, context, nextMiddleware));
            next(app);
        };
    }

    private static async Task TraceAsync(ActivitySource source, NodeStatus? status, HttpContext context, RequestDelegate next)
    {
        using var activity = source.StartActivity(SpanName, ActivityKind.Server);
        if (activity is not { IsAllDataRequested: true })
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        activity.SetTag("http.request.method", context.Request.Method);
        activity.SetTag("url.path", context.Request.Path.Value);
        if (status is not null)
        {
            activity.SetTag(MeshTelemetry.RevisionAttribute, status.AppliedRevision);
        }

        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
            throw;
        }
        finally
        {
            var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText;
            activity.DisplayName = route is null ? context.Request.Method : $"{context.Request.Method} {route}";
            if (route is not null)
            {
                activity.SetTag("http.route", route);
            }

            activity.SetTag("http.response.status_code", context.Response.StatusCode);
            if (context.Response.StatusCode >= 500)
            {
                activity.SetStatus(ActivityStatusCode.Error);
            }
        }
    }
}
