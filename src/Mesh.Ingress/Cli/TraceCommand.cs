using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Lab;
using Mesh.Ingress.Security;
using Mesh.Ingress.Trace;

namespace Mesh.Ingress.Cli;

/// <summary>
/// <c>mesh trace --node NODE tcp|udp ADDR:PORT [--from IP]</c>: asks NODE's daemon (<c>GET /v1/trace</c>) where a new
/// connection would go, from that node's live kernel state; <c>mesh trace --node NODE http ADDR:PORT --host H
/// [--path /P]</c> where an HTTP request would go: the host rules, then the route and cluster the node's running L7
/// entry picks. Each node traces its own kernel, so the API must be that node's: <c>--api</c>/<c>MESH_API</c> when given, else the lab's socket for NODE when there is one, else the default.
/// </summary>
public static class TraceCommand
{
    public static Command Build()
    {
        var node = new Option<string>("--node") { Description = "The node whose kernel is traced (its daemon must answer on the API)", Required = true };
        var from = new Option<string?>("--from") { Description = "The client's address (default: an external client; an address of the node itself takes the local path)" };
        var host = new Option<string?>("--host") { Description = "http: the request's Host header, e.g. web.test" };
        var path = new Option<string?>("--path") { Description = "http: the request's path (default /)" };
        var protocol = new Argument<string>("protocol") { Description = "tcp, udp or http (a request through the node's L7 entry: --host, --path)" };
        var target = new Argument<string>("address:port") { Description = "Where the connection goes, e.g. 198.18.0.13:8080" };
        var trace = new Command("trace", "Show, from a node's live kernel state (and, for http, its running L7 entry), each step a new connection or request would take, or where and why it would be refused, dropped or answered 404/503")
        {
            node, from, host, path, protocol, target, CommonOptions.Json,
        };
        foreach (var option in CommonOptions.ClientOptions)
        {
            trace.Options.Add(option);
        }

        trace.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var nodeName = Label(parse.GetValue(node));
            var query = Request(parse.GetValue(protocol), parse.GetValue(target), parse.GetValue(from), parse.GetValue(host), parse.GetValue(path));
            var (api, credentials, lab) = ApiOf(parse, nodeName);
            using var http = ApiClientFactory.Create(api, TimeSpan.FromSeconds(60), credentials);
            var result = await GetAsync(http, api, query, ct);
            if (result.Node != nodeName)
            {
                throw new ValidationException("--node", $"the daemon at {api} is node '{result.Node}', not '{nodeName}': point --api at {nodeName}'s daemon (each node traces its own kernel)");
            }

            if (lab)
            {
                result = await FollowAsync(result, ct);
            }

            if (parse.GetValue(CommonOptions.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions(MeshJson.Options) { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
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
    private static string Request(string? protocol, string? target, string? from, string? host, string? path)
    {
        var colon = target?.LastIndexOf(':') ?? -1;
        if (colon <= 0)
        {
            throw new ArgumentException($"'{Validate.Printable(target)}' is not ADDRESS:PORT (e.g. 198.18.0.13:8080)");
        }

        try
        {
            if (string.Equals(protocol, "http", StringComparison.OrdinalIgnoreCase))
            {
                var request = HttpTraceRequest.Parse(target![..colon], target[(colon + 1)..], host, path, from);
                var c = request.Connection;
                return Query("http", c.Address, c.Port, c.From) + $"&host={Uri.EscapeDataString(request.Host)}&path={Uri.EscapeDataString(request.Path)}";
            }

            if (host is not null || path is not null)
            {
                throw new ArgumentException($"--{(host is not null ? "host" : "path")}: only with http (a request through the node's L7 entry)");
            }

            var connection = TraceRequest.Parse(protocol, target![..colon], target[(colon + 1)..], from);
            return Query(connection.Proto, connection.Address, connection.Port, connection.From);
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

    /// <summary>The API of <paramref name="node"/>'s daemon, and whether it is the lab's (where every node's socket is at hand).</summary>
    private static (string Api, ApiClientCredentials Credentials, bool Lab) ApiOf(ParseResult parse, string node)
    {
        var given = parse.GetResult(CommonOptions.Api) is { Implicit: false } || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MESH_API"));
        if (!given && File.Exists(LabPlan.ApiSocket(node)))
        {
            return (LabPlan.Api(node), ApiClientCredentials.None, true);
        }

        return (parse.GetValue(CommonOptions.Api)!, CommonOptions.Credentials(parse), false);
    }

    /// <summary>
    /// In the lab every daemon is at hand: the far side of each remote candidate is asked of the daemon of the node
    /// its task runs on (a trace to the task's address there). Elsewhere the follow-up command is printed instead.
    /// </summary>
    private static async Task<TraceResult> FollowAsync(TraceResult result, CancellationToken ct)
    {
        if (result.Backends is not { } set)
        {
            return result;
        }

        var candidates = new List<TraceBackend>();
        foreach (var backend in set.Candidates)
        {
            if (backend is not { FollowUp: not null, Node: { } node } || !File.Exists(LabPlan.ApiSocket(node)))
            {
                candidates.Add(backend);
                continue;
            }

            try
            {
                using var http = ApiClientFactory.Create(LabPlan.Api(node), TimeSpan.FromSeconds(60));
                // An http trace's destinations are reached over TCP from the sandbox: their far side is a tcp trace.
                var far = await GetAsync(http, LabPlan.Api(node), Query(result.Protocol == "http" ? "tcp" : result.Protocol, backend.Address, backend.Port, null), ct);
                candidates.Add(far.Node == node ? backend with { TaskSide = far.Steps, FollowUp = null } : backend);
            }
            catch (Exception e) when (e is StoreUnavailableException or ValidationException or NotFoundException or InvalidOperationException)
            {
                candidates.Add(backend); // the follow-up command stays: the user can ask that node later
            }
        }

        return result with { Backends = set with { Candidates = candidates } };
    }

    private static string Query(string proto, string address, int port, string? from) =>
        $"v1/trace?proto={proto}&addr={address}&port={port.ToString(CultureInfo.InvariantCulture)}" + (from is null ? "" : $"&from={from}");

    private static async Task<TraceResult> GetAsync(HttpClient http, string api, string query, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(new Uri(query, UriKind.Relative), ct);
        }
        catch (HttpRequestException e)
        {
            throw new StoreUnavailableException($"the daemon at {api} did not answer: {e.Message}", e);
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
