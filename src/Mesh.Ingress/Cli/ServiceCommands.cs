using System.CommandLine;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;

namespace Mesh.Ingress.Cli;

public static class ServiceCommands
{
    public static Command Build()
    {
        var service = new Command("service", "Create, list, inspect and remove services");

        var name = new Argument<string>("name") { Description = "Service name (a DNS label)" };
        var publish = new Option<string[]>("--publish", "-p") { Description = "PUBLISHED:TARGET[/tcp|/udp][,mode=host|,traffic=local|,proxy=v2]: PUBLISHED on every node to TARGET in the tasks; mode=host: only on nodes with a task, straight to it; traffic=local: every node, to its own tasks only; proxy=v2: every node, a PROXY protocol v2 header first; all three keep the client's address (repeatable)", AllowMultipleArgumentsPerToken = false };
        var mode = new Option<string>("--mode") { Description = "vip (default) or dnsrr", DefaultValueFactory = _ => "vip" };
        var network = new Option<string[]>("--network") { Description = "Overlay network to join (repeatable)" };
        var alias = new Option<string[]>("--alias") { Description = "Another DNS name of the service on its networks (repeatable)" };
        var route = new Option<string[]>("--route") { Description = "HOST[/PATH]=TARGET: HTTP requests for HOST under PATH on every node's HTTP port go to TARGET in the tasks (repeatable)", AllowMultipleArgumentsPerToken = false };
        var health = new HealthCheckOptions();
        var lb = new Option<string?>("--lb") { Description = "round-robin (default), least-requests, power-of-two (both: routes only, no --publish) or maglev (consistent hash of the client's address)" };
        var affinity = new Option<string?>("--affinity") { Description = "none (default), cookie (routes only) or source-ip" };
        var backendProtocol = new Option<string?>("--backend-protocol") { Description = "http1 (default) or h2c: how the L7 entry speaks to the tasks (h2c: HTTP/2 without TLS, for gRPC servers; routes only)" };
        var create = new Command("create", "Create a service") { name, publish, mode, network, alias, route, lb, affinity, backendProtocol };
        foreach (var option in health.All)
        {
            create.Options.Add(option);
        }

        create.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var spec = new ServiceSpec
            {
                Name = parse.GetValue(name),
                Mode = parse.GetValue(mode)?.ToLowerInvariant() switch
                {
                    "vip" => ServiceMode.Vip,
                    "dnsrr" => ServiceMode.Dnsrr,
                    var other => throw new ArgumentException($"--mode '{other}' is not vip or dnsrr"),
                },
                Ports = (parse.GetValue(publish) ?? []).Select(p => CliErrors.Argument("--publish", () => PublishedPort.Parse(p))).ToArray(),
                Routes = (parse.GetValue(route) ?? []).Select(r => CliErrors.Argument("--route", () => ServiceRoute.Parse(r))).ToArray(),
                HealthCheck = health.Parse(parse),
                LoadBalancing = parse.GetValue(lb) is { } policy ? CliErrors.Argument("--lb", () => BalancingRules.ParseLb("--lb", policy)) : null,
                Affinity = parse.GetValue(affinity) is { } sticky ? CliErrors.Argument("--affinity", () => BalancingRules.ParseAffinity("--affinity", sticky)) : null,
                BackendProtocol = parse.GetValue(backendProtocol) is { } protocol ? CliErrors.Argument("--backend-protocol", () => BackendProtocols.Parse("--backend-protocol", protocol)) : null,
                Networks = parse.GetValue(network) ?? [],
                Aliases = parse.GetValue(alias) ?? [],
            };
            var created = await CommonOptions.Store(parse).CreateServiceAsync(spec, ct);
            Console.WriteLine(created.Name);
            return 0;
        }));

        var update = new Command("update", "Change a service's load-balancing policy or affinity") { name, lb, affinity };
        update.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var change = new ServiceUpdate
            {
                LoadBalancing = parse.GetValue(lb) is { } policy ? CliErrors.Argument("--lb", () => BalancingRules.ParseLb("--lb", policy)) : null,
                Affinity = parse.GetValue(affinity) is { } sticky ? CliErrors.Argument("--affinity", () => BalancingRules.ParseAffinity("--affinity", sticky)) : null,
            };
            if (change.LoadBalancing is null && change.Affinity is null)
            {
                throw new ArgumentException("nothing to update: give --lb and/or --affinity");
            }

            var updated = await CommonOptions.Store(parse).UpdateServiceAsync(parse.GetValue(name)!, change, ct);
            Console.WriteLine($"{updated.Name} lb={BalancingRules.Name(updated.LoadBalancing)} affinity={BalancingRules.Name(updated.Affinity)}");
            return 0;
        }));

        var ls = new Command("ls", "List services") { CommonOptions.Json };
        ls.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var state = await CommonOptions.Store(parse).GetStateAsync(ct);
            if (parse.GetValue(CommonOptions.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(state.Services, MeshJson.Options));
                return 0;
            }

            TableWriter.Write(Console.Out, ["NAME", "MODE", "REPLICAS", "PORTS", "VIPS", "MARK", "ALIASES", "ROUTES", "HEALTH"], state.Services.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => (IReadOnlyList<string>)
            [
                s.Name,
                s.Mode.ToString().ToLowerInvariant(),
                state.Tasks.Count(t => t.Service == s.Name).ToString(System.Globalization.CultureInfo.InvariantCulture),
                string.Join(',', s.Ports.Select(p => p.ToString())),
                string.Join(',', s.Vips.Select(v => $"{v.Key}={v.Value}")),
                "0x" + s.FirewallMark.ToString("x", System.Globalization.CultureInfo.InvariantCulture),
                string.Join(',', s.Aliases),
                string.Join(',', s.Routes.Select(r => r.ToString())),
                s.HealthCheck is { } check ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{check.Path ?? "tcp"},{check.IntervalMs}ms") : "",
            ]));
            return 0;
        }));

        var inspect = new Command("inspect", "Show one service and its tasks as JSON") { name };
        inspect.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            using var http = CommonOptions.Client(parse);
            var detail = await ApiGet<ServiceDetail>(http, parse.GetValue(CommonOptions.Api)!, $"v1/services/{Uri.EscapeDataString(parse.GetValue(name)!)}", ct);
            Console.WriteLine(JsonSerializer.Serialize(detail, new JsonSerializerOptions(MeshJson.Options) { WriteIndented = true }));
            return 0;
        }));

        var rm = new Command("rm", "Remove a service and its tasks") { name };
        rm.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            await CommonOptions.Store(parse).RemoveServiceAsync(parse.GetValue(name)!, ct);
            Console.WriteLine(parse.GetValue(name));
            return 0;
        }));

        service.Subcommands.Add(create);
        service.Subcommands.Add(update);
        service.Subcommands.Add(ls);
        service.Subcommands.Add(inspect);
        service.Subcommands.Add(rm);
        return service;
    }

    /// <summary>A GET for read models the store interface does not have, with the store's error mapping.</summary>
    internal static Task<T> ApiGet<T>(HttpClient http, string path, CancellationToken ct) =>
        ApiGet<T>(http, http.BaseAddress?.ToString() ?? "", path, ct);

    /// <param name="api">The API as the user named it, for errors (a unix socket's client has a placeholder base address).</param>
    internal static async Task<T> ApiGet<T>(HttpClient http, string api, string path, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(new Uri(path, UriKind.Relative), ct);
        }
        catch (HttpRequestException e)
        {
            var why = e.HttpRequestError == HttpRequestError.ConnectionError && e.InnerException is { } inner ? inner.Message : e.Message;
            throw new StoreUnavailableException($"the API at {api} is unreachable: {why}", e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
            {
                var error = TryError(body);
                throw response.StatusCode == System.Net.HttpStatusCode.NotFound
                    ? new NotFoundException(error ?? "not found")
                    : new StoreUnavailableException(error ?? $"{(int)response.StatusCode}");
            }

            return JsonSerializer.Deserialize<T>(body, MeshJson.Options)!;
        }
    }

    private static string? TryError(string body)
    {
        try
        {
            return JsonSerializer.Deserialize<ApiError>(body, MeshJson.Options)?.Error;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
