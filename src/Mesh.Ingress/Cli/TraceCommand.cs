using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Lab;
using Mesh.Ingress.Security;
using Mesh.Ingress.Trace;

namespace Mesh.Ingress.Cli;

/// <summary>
/// <c>mesh trace --node NODE tcp|udp ADDR:PORT [--from IP]</c>: asks NODE's daemon (<c>GET /v1/trace</c>) where a new
/// connection would go, from that node's live kernel state. Each node traces its own kernel, so the API must be that
/// node's: <c>--api</c>/<c>MESH_API</c> when given, else the lab's socket for NODE when there is one, else the default.
/// </summary>
public static class TraceCommand
{
    public static Command Build()
    {
        var node = new Option<string>("--node") { Description = "The node whose kernel is traced (its daemon must answer on the API)", Required = true };
        var from = new Option<string?>("--from") { Description = "The client's address (default: an external client; an address of the node itself takes the local path)" };
        var protocol = new Argument<string>("protocol") { Description = "tcp or udp" };
        var target = new Argument<string>("address:port") { Description = "Where the connection goes, e.g. 198.18.0.13:8080" };
        var trace = new Command("trace", "Show, from a node's live kernel state, each step a new connection would take, or where and why it would be refused or dropped")
        {
            node, from, protocol, target, CommonOptions.Json,
        };
        foreach (var option in CommonOptions.ClientOptions)
        {
            trace.Options.Add(option);
        }

        trace.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var nodeName = Label(parse.GetValue(node));
            var request = Request(parse.GetValue(protocol), parse.GetValue(target), parse.GetValue(from));
            var (api, credentials) = ApiOf(parse, nodeName);
            using var http = ApiClientFactory.Create(api, TimeSpan.FromSeconds(60), credentials);
            var query = $"v1/trace?proto={request.Proto}&addr={request.Address}&port={request.Port.ToString(CultureInfo.InvariantCulture)}"
                + (request.From is null ? "" : $"&from={request.From}");
            var result = await GetAsync(http, query, ct);
            if (result.Node != nodeName)
            {
                throw new ValidationException("--node", $"the daemon at {api} is node '{result.Node}', not '{nodeName}': point --api at {nodeName}'s daemon (each node traces its own kernel)");
            }

            if (parse.GetValue(CommonOptions.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions(MeshJson.Options) { WriteIndented = true }));
            }
            else
            {
                TraceText.Write(Console.Out, result);
            }

            return 0;
        }));
        return trace;
    }

    /// <summary>Validated here first, so bad usage is exit 2 with the argument's name, without a round trip.</summary>
    private static TraceRequest Request(string? protocol, string? target, string? from)
    {
        var colon = target?.LastIndexOf(':') ?? -1;
        if (colon <= 0)
        {
            throw new ArgumentException($"'{Validate.Printable(target)}' is not ADDRESS:PORT (e.g. 198.18.0.13:8080)");
        }

        try
        {
            return TraceRequest.Parse(protocol, target![..colon], target[(colon + 1)..], from);
        }
        catch (ValidationException e)
        {
            throw new ArgumentException(e.Field switch { "proto" => "protocol", "addr" or "port" => "address:port", var f => "--" + f } + e.Message[e.Field.Length..]);
        }
    }

    private static string Label(string? value)
    {
        try
        {
            return Validate.Label("--node", value);
        }
        catch (ValidationException e)
        {
            throw new ArgumentException(e.Message);
        }
    }

    private static (string Api, ApiClientCredentials Credentials) ApiOf(ParseResult parse, string node)
    {
        var given = parse.GetResult(CommonOptions.Api) is { Implicit: false } || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MESH_API"));
        if (!given && File.Exists(LabPlan.ApiSocket(node)))
        {
            return (LabPlan.Api(node), ApiClientCredentials.None);
        }

        return (parse.GetValue(CommonOptions.Api)!, CommonOptions.Credentials(parse));
    }

    private static async Task<TraceResult> GetAsync(HttpClient http, string query, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(new Uri(query, UriKind.Relative), ct);
        }
        catch (HttpRequestException e)
        {
            throw new StoreUnavailableException($"{http.BaseAddress}: {e.Message}", e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            if (response.IsSuccessStatusCode)
            {
                return JsonSerializer.Deserialize<TraceResult>(body, MeshJson.Options)!;
            }

            var error = Error(body) ?? ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
            throw response.StatusCode switch
            {
                HttpStatusCode.BadRequest => new ValidationException("trace", error),
                HttpStatusCode.NotFound => new NotFoundException($"{error} (is the daemon older than mesh trace?)"),
                HttpStatusCode.Unauthorized => new InvalidOperationException($"the daemon refused the credentials: {error}"),
                _ => new InvalidOperationException($"the daemon could not trace: {error}"),
            };
        }
    }

    private static string? Error(string body)
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
