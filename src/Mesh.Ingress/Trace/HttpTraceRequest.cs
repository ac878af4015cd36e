using Mesh.Discovery.Model;

namespace Mesh.Ingress.Trace;

/// <summary>
/// What to trace at L7: an HTTP request with <see cref="Host"/> and <see cref="Path"/> on a new TCP connection to
/// <see cref="Connection"/>'s address and port (the node's L7 entry, <c>--http-port</c>, when nothing else takes it first).
/// </summary>
public sealed record HttpTraceRequest(TraceRequest Connection, string Host, string Path)
{
    public const int MaxHost = 260;
    public const int MaxPath = 2048;

    /// <summary>Validates the query's raw values; a bad one is a <see cref="ValidationException"/> naming it (400).</summary>
    public static HttpTraceRequest Parse(string? addr, string? port, string? host, string? path, string? from)
    {
        var connection = TraceRequest.Parse("tcp", addr, port, from);
        if (string.IsNullOrEmpty(host))
        {
            throw new ValidationException("host", "is required with http: the request's Host header, e.g. web.test");
        }

        // A Host header as a client may send it, known or not (an unknown one is what the trace reports as 404):
        // a name or address and an optional port, nothing a header or a log line could be bent with.
        if (host.Length > MaxHost || !host.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or ':' or '[' or ']'))
        {
            throw new ValidationException("host", $"'{Validate.Printable(host)}' is not a host name or address with an optional :port (letters, digits, . - _ : [ ], at most {MaxHost})");
        }

        path = string.IsNullOrEmpty(path) ? "/" : path;
        if (path[0] != '/' || path.Length > MaxPath || path.Any(c => c is <= ' ' or >= '\u007f' or '?' or '#'))
        {
            throw new ValidationException("path", $"'{Validate.Printable(path)}' is not a request path: it starts with /, has no spaces, controls, query (?) or fragment (#), at most {MaxPath} characters");
        }

        return new HttpTraceRequest(connection, host, path);
    }
}
