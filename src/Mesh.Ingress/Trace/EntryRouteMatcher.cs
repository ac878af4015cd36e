using System.Runtime.CompilerServices;
using Mesh.Ingress.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Mesh.Ingress.Trace;

/// <summary>
/// Asks the running L7 entry which route a request would get, by the entry's own matching: a routing-only pipeline
/// (<c>UseRouting</c>, then stop) over the entry application's own endpoint data sources — YARP's live route endpoints
/// and the 404 fallback — in the entry's service provider. So the same ASP.NET Core endpoint matcher (host policy,
/// path template, order) picks the same endpoint from the same endpoints as for a real request; nothing is forwarded.
/// The route's cluster and destinations (with YARP's health of each) are then read from the endpoint's
/// <see cref="RouteModel"/>, the very object the proxy pipeline uses.
/// </summary>
public sealed class EntryRouteMatcher
{
    // One matching pipeline per entry application (it is rebuilt only when the entry restarts): its matcher follows
    // the data sources' change tokens as the entry's own does, so it is built once, not per trace.
    private readonly ConditionalWeakTable<IEndpointRouteBuilder, RequestDelegate> _pipelines = new();

    public async Task<EntryMatch> MatchAsync(IEndpointRouteBuilder entry, string host, string path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var pipeline = _pipelines.GetValue(entry, Build);
        var context = new DefaultHttpContext { RequestServices = entry.ServiceProvider, RequestAborted = ct };
        context.Request.Method = HttpMethods.Get;
        context.Request.Scheme = "http";
        context.Request.Host = new HostString(host);
        context.Request.Path = PathString.FromUriComponent(path); // decoded, as Kestrel hands a request's path to routing
        await pipeline(context).ConfigureAwait(false);

        var lookup = entry.ServiceProvider.GetRequiredService<IProxyStateLookup>();
        var all = lookup.GetRoutes().Select(r => Route(r)).ToList();
        var bare = new HostString(host).Host;
        var ofHost = all.Where(r => r.Hosts.Any(h => string.Equals(h, bare, StringComparison.OrdinalIgnoreCase)))
            .OrderBy(r => r.Order ?? 0).ThenBy(r => r.Id, StringComparer.Ordinal).ToList();
        var endpoint = context.GetEndpoint();
        if (endpoint?.Metadata.GetMetadata<RouteModel>() is not { } model)
        {
            return new EntryMatch(null, null, ofHost, all.Count, endpoint?.DisplayName ?? "none");
        }

        return new EntryMatch(Route(model), Cluster(model), ofHost, all.Count, null);
    }

    private static RequestDelegate Build(IEndpointRouteBuilder entry)
    {
        var app = new ApplicationBuilder(entry.ServiceProvider);
        app.UseRouting();
        app.Use(_ => _ => Task.CompletedTask); // routing has set the endpoint; nothing runs it
        app.UseEndpoints(endpoints =>
        {
            foreach (var source in entry.DataSources)
            {
                endpoints.DataSources.Add(source);
            }
        });
        return app.Build();
    }

    private static EntryRoute Route(RouteModel model)
    {
        var config = model.Config;
        return new EntryRoute(
            config.RouteId,
            config.Match.Hosts?.ToArray() ?? [],
            config.Match.Path,
            config.Order,
            config.ClusterId ?? "",
            config.Metadata?.GetValueOrDefault(HttpRouteTable.ServiceKey));
    }

    private static EntryCluster? Cluster(RouteModel model)
    {
        if (model.Cluster is not { } cluster)
        {
            return model.Config.ClusterId is { } id ? new EntryCluster(id, false, null, []) : null;
        }

        var available = cluster.DestinationsState.AvailableDestinations.Select(d => d.DestinationId).ToHashSet(StringComparer.Ordinal);
        var destinations = cluster.Destinations.Values
            .OrderBy(d => d.DestinationId, StringComparer.Ordinal)
            .Select(d => new EntryDestination(
                d.DestinationId,
                d.Model.Config.Address,
                d.Health.Active.ToString().ToLowerInvariant(),
                d.Health.Passive.ToString().ToLowerInvariant(),
                available.Contains(d.DestinationId)))
            .ToList();
        return new EntryCluster(cluster.ClusterId, true, cluster.Model.Config.LoadBalancingPolicy, destinations);
    }
}
