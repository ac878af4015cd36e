using System.CommandLine;
using System.Globalization;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Cli;

/// <summary><c>mesh service create</c>'s health check options, checked here so that an error names the option.</summary>
public sealed class HealthCheckOptions
{
    public Option<string?> Path { get; } = new("--health-path") { Description = "Health check: GET this path on the task's lowest TCP target from every node's ingress sandbox; 2xx is healthy" };

    public Option<bool> Tcp { get; } = new("--health-tcp") { Description = "Health check: a TCP connect to the task's lowest TCP target" };

    public Option<string?> Interval { get; } = new("--health-interval") { Description = $"Time between probes, e.g. 5s, 500ms (default {HealthCheck.DefaultIntervalMs / 1000}s)" };

    public Option<string?> Timeout { get; } = new("--health-timeout") { Description = $"Time one probe may take, at most the interval (default {HealthCheck.DefaultTimeoutMs / 1000}s)" };

    public Option<int?> HealthyThreshold { get; } = new("--health-healthy-threshold") { Description = $"Good probes in a row that bring an unhealthy task back (default {HealthCheck.DefaultThreshold})" };

    public Option<int?> UnhealthyThreshold { get; } = new("--health-unhealthy-threshold") { Description = $"Failed probes in a row that take a task out of the node's backends (default {HealthCheck.DefaultThreshold})" };

    public IEnumerable<Option> All => [Path, Tcp, Interval, Timeout, HealthyThreshold, UnhealthyThreshold];

    /// <summary>The API field → the option a user typed.</summary>
    private static string OptionOf(string field) => field switch
    {
        "path" => "--health-path",
        "intervalMs" => "--health-interval",
        "timeoutMs" => "--health-timeout",
        "healthyThreshold" => "--health-healthy-threshold",
        "unhealthyThreshold" => "--health-unhealthy-threshold",
        _ => "--health-" + field,
    };

    /// <summary>The check the options ask for, null when none; <see cref="ArgumentException"/> naming the option when they are wrong.</summary>
    public HealthCheck? Parse(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var path = parse.GetValue(Path);
        var tcp = parse.GetValue(Tcp);
        if (path is not null && tcp)
        {
            throw new ArgumentException("--health-path and --health-tcp exclude each other: an HTTP check or a TCP check");
        }

        var (interval, timeout, healthy, unhealthy) = (parse.GetValue(Interval), parse.GetValue(Timeout), parse.GetValue(HealthyThreshold), parse.GetValue(UnhealthyThreshold));
        if (path is null && !tcp)
        {
            if (interval is not null || timeout is not null || healthy is not null || unhealthy is not null)
            {
                throw new ArgumentException("--health-interval, --health-timeout and the thresholds need a check: --health-path PATH or --health-tcp");
            }

            return null;
        }

        var check = new HealthCheck
        {
            Kind = tcp ? HealthCheckKind.Tcp : HealthCheckKind.Http,
            Path = path,
            IntervalMs = interval is null ? HealthCheck.DefaultIntervalMs : Milliseconds("--health-interval", interval),
            TimeoutMs = timeout is null ? HealthCheck.DefaultTimeoutMs : Milliseconds("--health-timeout", timeout),
            HealthyThreshold = healthy ?? HealthCheck.DefaultThreshold,
            UnhealthyThreshold = unhealthy ?? HealthCheck.DefaultThreshold,
        };
        if (interval is not null && timeout is null && check.TimeoutMs > check.IntervalMs)
        {
            check = check with { TimeoutMs = check.IntervalMs }; // a short interval brings the default timeout down with it
        }

        try
        {
            return HealthCheck.Normalize(check, OptionOf);
        }
        catch (ValidationException e)
        {
            var why = e.Message.StartsWith(e.Field + ": ", StringComparison.Ordinal) ? e.Message[(e.Field.Length + 2)..] : e.Message;
            throw new ArgumentException($"{e.Field} {why}", e);
        }
    }

    /// <summary>"500ms", "2s", "1.5s", "1m" → milliseconds.</summary>
    public static int Milliseconds(string option, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 1.0)
            : text.EndsWith('s') ? (text[..^1], 1000.0)
            : text.EndsWith('m') ? (text[..^1], 60_000.0)
            : (text, double.NaN);
        if (double.IsNaN(scale) || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value)
            || value * scale is < 1 or > int.MaxValue)
        {
            throw new ArgumentException($"{option} '{Validate.Printable(text)}' is not a duration such as 500ms, 5s or 1m");
        }

        return (int)Math.Round(value * scale);
    }
}
