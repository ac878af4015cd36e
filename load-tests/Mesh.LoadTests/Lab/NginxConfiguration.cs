namespace Mesh.LoadTests.Lab;

/// <summary>
/// The nginx configuration the lab scenarios run nginx with (first-packet's backend, l7's proxy): in the foreground,
/// errors to stderr, no access log, and its pid file and every temporary directory under the scenario's own work
/// directory, so nothing of a run is left in nginx's compiled-in prefix. What differs is the caller's: the number of
/// workers and the http block's own directives (servers, upstreams).
/// </summary>
internal static class NginxConfiguration
{
    /// <summary>
    /// The configuration text with <paramref name="workers"/> worker processes and <paramref name="http"/> (lines
    /// indented by four spaces, no final newline) closing the http block.
    /// </summary>
    public static string Build(string work, int workers, string http) => $$"""
        worker_processes {{workers}};
        daemon off;
        pid {{work}}/nginx.pid;
        error_log stderr warn;
        events { worker_connections 4096; }
        http {
            access_log off;
            client_body_temp_path {{work}}/client_body;
            proxy_temp_path {{work}}/proxy;
            fastcgi_temp_path {{work}}/fastcgi;
            uwsgi_temp_path {{work}}/uwsgi;
            scgi_temp_path {{work}}/scgi;
        {{http}}
        }
        """;
}
