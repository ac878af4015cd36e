using System.Globalization;

namespace Mesh.Discovery.Model;

/// <summary>How a health check probes a task.</summary>
public enum HealthCheckKind
{
    /// <summary>An HTTP GET of <see cref="HealthCheck.Path"/>: a 2xx answer is healthy.</summary>
    Http,

    /// <summary>A TCP connect: an accepted connection is healthy.</summary>
    Tcp,
}

/// <summary>
/// A service's health check (<c>--health-path PATH</c> or <c>--health-tcp</c>): every node probes every task of the
/// service from its own ingress sandbox, on the service's lowest TCP target (<see cref="ProbePort"/>), every
/// <see cref="IntervalMs"/>; a task is out of that node's backends after <see cref="UnhealthyThreshold"/> failed probes
/// in a row and back after <see cref="HealthyThreshold"/> good ones. The result is each node's own, never stored.
/// </summary>
public sealed record HealthCheck
{
    public const int DefaultIntervalMs = 5_000;
    public const int DefaultTimeoutMs = 2_000;
    public const int DefaultThreshold = 2;

    /// <summary>Shortest interval: probes are one connection each, from every node to every task.</summary>
    public const int MinIntervalMs = 200;
    public const int MaxIntervalMs = 3_600_000;
    public const int MinTimeoutMs = 50;
    public const int MaxThreshold = 10;
    public const int MaxPathLength = 1024;

    public HealthCheckKind Kind { get; init; } = HealthCheckKind.Http;

    /// <summary>The path an HTTP check GETs (null for a TCP check).</summary>
    public string? Path { get; init; }

    public int IntervalMs { get; init; } = DefaultIntervalMs;

    /// <summary>How long one probe may take (connect, and for HTTP the status line); at most the interval.</summary>
    public int TimeoutMs { get; init; } = DefaultTimeoutMs;

    /// <summary>Good probes in a row that bring an unhealthy task back.</summary>
    public int HealthyThreshold { get; init; } = DefaultThreshold;

    /// <summary>Failed probes in a row that take a task out.</summary>
    public int UnhealthyThreshold { get; init; } = DefaultThreshold;

    /// <summary>
    /// Checks a health check field by field and returns it normalized. <paramref name="name"/> turns a property name
    /// (path, intervalMs, timeoutMs, healthyThreshold, unhealthyThreshold) into the name the caller's user knows: the
    /// API's JSON field or the CLI's option.
    /// </summary>
    public static HealthCheck Normalize(HealthCheck check, Func<string, string> name)
    {
        ArgumentNullException.ThrowIfNull(check);
        ArgumentNullException.ThrowIfNull(name);
        if (!Enum.IsDefined(check.Kind))
        {
            throw new ValidationException(name("kind"), "must be http or tcp");
        }

        if (check.Kind == HealthCheckKind.Http)
        {
            var p = check.Path;
            if (string.IsNullOrEmpty(p) || p[0] != '/' || p.Length > MaxPathLength || !p.All(IsPathChar))
            {
                throw new ValidationException(name("path"), $"'{Validate.Printable(p)}' is not a path to GET: it starts with '/', has at most {MaxPathLength} characters, letters, digits and - . _ ~ / ? & = % + : @ , ; only");
            }
        }
        else if (check.Path is not null)
        {
            throw new ValidationException(name("path"), "a TCP check has no path: use an HTTP check (--health-path) or a TCP check (--health-tcp), not both");
        }

        if (check.IntervalMs is < MinIntervalMs or > MaxIntervalMs)
        {
            throw new ValidationException(name("intervalMs"), string.Create(CultureInfo.InvariantCulture, $"{check.IntervalMs} ms is outside {MinIntervalMs} ms - {MaxIntervalMs / 1000} s"));
        }

        if (check.TimeoutMs < MinTimeoutMs || check.TimeoutMs > check.IntervalMs)
        {
            throw new ValidationException(name("timeoutMs"), string.Create(CultureInfo.InvariantCulture, $"{check.TimeoutMs} ms is outside {MinTimeoutMs} ms - the interval ({check.IntervalMs} ms)"));
        }

        Threshold(name("healthyThreshold"), check.HealthyThreshold);
        Threshold(name("unhealthyThreshold"), check.UnhealthyThreshold);
        return check;
    }

    /// <summary>
    /// The port the check probes: the lowest TCP target of the service's published ports and routes (the task's
    /// firewall lets only those in from the ingress network). Null when the service has none.
    /// </summary>
    public static int? ProbePort(IReadOnlyList<PublishedPort> ports, IReadOnlyList<ServiceRoute> routes)
    {
        var targets = ports.Where(p => p.Protocol == TransportProtocol.Tcp).Select(p => p.Target).Concat(routes.Select(r => r.Target)).ToList();
        return targets.Count == 0 ? null : targets.Min();
    }

    /// <summary>For logs: "http /healthz every 5000ms, timeout 2000ms, out after 2, back after 2".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{(Kind == HealthCheckKind.Http ? "http " + Path : "tcp")} every {IntervalMs}ms, timeout {TimeoutMs}ms, out after {UnhealthyThreshold}, back after {HealthyThreshold}");

    private static void Threshold(string field, int value)
    {
        if (value is < 1 or > MaxThreshold)
        {
            throw new ValidationException(field, string.Create(CultureInfo.InvariantCulture, $"{value} is outside 1-{MaxThreshold}"));
        }
    }

    /// <summary>Unreserved and sub-delimiter URI characters: nothing that could end the request line or add a header.</summary>
    private static bool IsPathChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '.' or '_' or '~' or '?' or '&' or '=' or '%' or '+' or ':' or '@' or ',' or ';';
}
