using System.CommandLine;
using Mesh.Discovery.Security;
using Mesh.Discovery.Store;
using Mesh.Ingress.Security;

namespace Mesh.Ingress.Cli;

/// <summary>Options shared by every client command.</summary>
public static class CommonOptions
{
    public static Option<string> Api { get; } = new("--api")
    {
        Description = "The daemon's API: unix:///path.sock, https://HOST:PORT or http://HOST:PORT (env MESH_API)",
        DefaultValueFactory = _ => Env("MESH_API") ?? ApiClientFactory.DefaultApi,
        Recursive = true,
    };

    public static Option<string?> TlsCert { get; } = FileOption("--tls-cert", "MESH_TLS_CERT", "With an https API: this client's certificate (mutual TLS)");

    public static Option<string?> TlsKey { get; } = FileOption("--tls-key", "MESH_TLS_KEY", "With an https API: the key of --tls-cert");

    public static Option<string?> TlsCa { get; } = FileOption("--tls-ca", "MESH_TLS_CA", "With an https API: the cluster CA the daemon's certificate must chain to");

    public static Option<string?> TokenFile { get; } = FileOption("--api-token-file", "MESH_API_TOKEN_FILE", "With a TCP API: a file holding the bearer token");

    public static Option<bool> Json { get; } = new("--json") { Description = "Print JSON instead of a table" };

    public static IEnumerable<Option> ClientOptions => [Api, TlsCert, TlsKey, TlsCa, TokenFile];

    /// <summary>The credentials for the chosen API: none for a unix socket (its file mode guards it), else what the options name.</summary>
    public static ApiClientCredentials Credentials(ParseResult parse)
    {
        if (!ApiClientFactory.IsTcp(parse.GetValue(Api)!, out _))
        {
            return ApiClientCredentials.None;
        }

        var (cert, key, ca) = (parse.GetValue(TlsCert), parse.GetValue(TlsKey), parse.GetValue(TlsCa));
        var tls = cert is null && key is null && ca is null ? null : ClientTls.Load("--tls-cert", cert, "--tls-key", key, "--tls-ca", ca);
        var token = parse.GetValue(TokenFile) is { } file ? BearerToken.Load("--api-token-file", file) : null;
        return new ApiClientCredentials(tls, token);
    }

    public static HttpClient Client(ParseResult parse) => ApiClientFactory.Create(parse.GetValue(Api)!, null, Credentials(parse));

    public static RemoteStore Store(ParseResult parse) => ApiClientFactory.Store(parse.GetValue(Api)!, Credentials(parse));

    private static Option<string?> FileOption(string name, string env, string description) => new(name)
    {
        Description = $"{description} (env {env})",
        DefaultValueFactory = _ => Env(env),
        Recursive = true,
    };

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
