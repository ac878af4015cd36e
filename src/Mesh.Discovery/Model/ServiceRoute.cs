using System.Globalization;

namespace Mesh.Discovery.Model;

/// <summary>
/// An HTTP route to a service through the node's L7 entry: requests for <see cref="Host"/> whose path starts with
/// <see cref="PathPrefix"/> go to the service's tasks on <see cref="Target"/>. Host is stored lower-case and the prefix
/// without a trailing slash (but "/" for everything), so two spellings of one route compare equal.
/// </summary>
public sealed record ServiceRoute(string Host, string PathPrefix, int Target)
{
    /// <summary>The forms <see cref="Parse"/> accepts, for error messages and help.</summary>
    public const string AcceptedForms = "HOST[/PATH]=PORT (e.g. shop.test/=80 or shop.test/api=8080)";

    /// <summary>Longest path prefix accepted (a route is configuration, not a URL).</summary>
    public const int MaxPathLength = 1024;

    /// <summary>Parses the CLI form <c>HOST[/PATH]=PORT</c>.</summary>
    public static ServiceRoute Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var equals = text.LastIndexOf('=');
        if (equals < 0)
        {
            throw new ValidationException("route", $"'{Validate.Printable(text)}' has no port: use {AcceptedForms}");
        }

        if (!int.TryParse(text.AsSpan(equals + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new ValidationException("route", $"'{Validate.Printable(text)}' is not {AcceptedForms} with a port 1-65535");
        }

        var hostAndPath = text[..equals];
        var slash = hostAndPath.IndexOf('/', StringComparison.Ordinal);
        var host = slash < 0 ? hostAndPath : hostAndPath[..slash];
        var path = slash < 0 ? "/" : hostAndPath[slash..];
        return Normalize("route", host, path, port);
    }

    /// <summary>Checks and normalizes a route given field by field (the API's JSON): names the field that is wrong.</summary>
    public static ServiceRoute Normalize(string field, string? host, string? pathPrefix, int target)
    {
        var h = Validate.DottedName($"{field}.host", host).ToLowerInvariant();
        if (!h.Contains('.', StringComparison.Ordinal) && h != "localhost")
        {
            // A bare label would also match what a client sends as Host for a node's own name; say it needs a domain.
            throw new ValidationException($"{field}.host", $"'{h}' is not a host name with a domain (e.g. {h}.test)");
        }

        var p = string.IsNullOrEmpty(pathPrefix) ? "/" : pathPrefix;
        if (p[0] != '/' || p.Length > MaxPathLength || !p.All(IsPathChar) || p.Contains("//", StringComparison.Ordinal)
            || p.Split('/').Any(segment => segment is "." or ".."))
        {
            throw new ValidationException($"{field}.pathPrefix", $"'{Validate.Printable(p)}' is not a path prefix: it starts with '/', has letters, digits and - . _ ~ between single slashes, no '.' or '..' segment, at most {MaxPathLength} characters");
        }

        if (p.Length > 1 && p[^1] == '/')
        {
            p = p[..^1];
        }

        Validate.Port($"{field}.target", target);
        return new ServiceRoute(h, p, target);
    }

    /// <summary>The route's identity across the cluster: one service per host and prefix (YARP matches paths ignoring case).</summary>
    public (string Host, string Path) Identity() => (Host, PathPrefix.ToLowerInvariant());

    /// <summary>Unreserved URI characters and '/': nothing that needs escaping or that YARP's route templates read as syntax ({ } * ?).</summary>
    private static bool IsPathChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '.' or '_' or '~';

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Host}{(PathPrefix == "/" ? "/" : PathPrefix)}={Target}");
}
