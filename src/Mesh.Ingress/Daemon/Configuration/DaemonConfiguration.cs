using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Daemon.Configuration;

/// <summary>
/// The daemon's settings from three places, in this order of precedence: command-line flags, <c>MESH_*</c>
/// environment variables, the <c>--config</c> JSON file; then the flags' defaults. Every key is a flag's name without
/// its dashes (<c>lease-ttl</c>, env <c>MESH_LEASE_TTL</c>), so one validation (the flags') serves all three; what
/// this layer checks itself is what only it knows: unknown keys and wrong types, named with their source.
/// </summary>
public sealed partial class DaemonConfiguration
{
    private readonly Dictionary<string, string> _sources;

    private DaemonConfiguration(ParseResult parse, Dictionary<string, string> sources)
    {
        Parse = parse;
        _sources = sources;
    }

    /// <summary>The effective settings, as if every value had been given as a flag.</summary>
    public ParseResult Parse { get; }

    /// <summary>Where a flag's value came from when not from the command line: <c>MESH_LEASE_TTL</c>, or the key in the file.</summary>
    public string? SourceOf(string flag) => _sources.GetValueOrDefault(flag);

    /// <summary>Layers environment and file under the given flags. Throws <see cref="ArgumentException"/> naming key and source.</summary>
    /// <param name="given">The command line as parsed.</param>
    /// <param name="command">The daemon command: its options are the keys.</param>
    /// <param name="configFile">The <c>--config</c> option (itself taken from the flag or <c>MESH_CONFIG</c>).</param>
    /// <param name="required">Options that must have a value from one of the sources.</param>
    /// <param name="environment">Reads an environment variable (the process's, or a test's).</param>
    public static DaemonConfiguration Resolve(ParseResult given, Command command, Option<string?> configFile, IReadOnlyList<Option> required, Func<string, string?> environment)
    {
        var keyed = command.Options.Where(o => o != configFile && o.Name.StartsWith("--", StringComparison.Ordinal) && !IsHelp(o))
            .ToDictionary(o => Key(o), o => o, StringComparer.Ordinal);
        var configPath = Given(given, configFile) ? given.GetValue(configFile) : NonEmpty(environment(EnvironmentName(configFile)));
        var file = configPath is null ? null : ConfigFile.Load(configPath, keyed);

        var tokens = new List<string>();
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, option) in keyed)
        {
            IEnumerable<string> values;
            if (Given(given, option))
            {
                values = FromTyped(given.GetResult(option)!.GetValueOrDefault<object?>());
            }
            else if (NonEmpty(environment(EnvironmentName(option))) is { } text)
            {
                var name = EnvironmentName(option);
                values = ConfigValue.FromText(option, text, name);
                sources[option.Name] = name;
            }
            else if (file is not null && file.TryGetValue(key, out var fromFile))
            {
                values = fromFile;
                sources[option.Name] = $"\"{key}\" in {configPath}";
            }
            else
            {
                continue;
            }

            // --key=value: a value that starts with '-' or '@' stays a value (never an option or a response file).
            tokens.AddRange(values.Select(v => $"{option.Name}={v}"));
        }

        var parse = command.Parse(tokens);
        var configuration = new DaemonConfiguration(parse, sources);
        if (parse.Errors.Count > 0)
        {
            // A type this layer does not check itself (passed through as text): the parser's message, with its source.
            throw new ArgumentException(configuration.Annotate(string.Join("; ", parse.Errors.Select(e => e.Message))));
        }

        foreach (var option in required.Where(o => parse.GetResult(o) is null or { Implicit: true }))
        {
            throw new ArgumentException($"{option.Name} is required: give {option.Name}, {EnvironmentName(option)} or \"{Key(option)}\" in the --config file");
        }

        return configuration;
    }

    /// <summary>
    /// Runs <paramref name="build"/> (which validates with the flags' messages) and, when it refuses a value that came
    /// from the environment or the file, says so: <c>--lease-ttl 1: use 2 to 3600 seconds (--lease-ttl from "lease-ttl"
    /// in /etc/mesh/mesh.json)</c>. Any refusal becomes a usage error (exit 2): the daemon has not started.
    /// </summary>
    public T Explain<T>(Func<T> build)
    {
        try
        {
            return build();
        }
        catch (Exception e) when (e is ArgumentException or FormatException or ValidationException)
        {
            throw new ArgumentException(Annotate(e.Message), e);
        }
    }

    /// <summary>Appends where each flag named in <paramref name="message"/> got its value, if not from the command line.</summary>
    private string Annotate(string message)
    {
        var named = Flag().Matches(message).Select(m => m.Value).Distinct(StringComparer.Ordinal)
            .Where(_sources.ContainsKey).Select(f => $"{f} from {_sources[f]}").ToList();
        return named.Count == 0 ? message : $"{message} ({string.Join("; ", named)})";
    }

    /// <summary><c>--lease-ttl</c> → <c>MESH_LEASE_TTL</c>.</summary>
    public static string EnvironmentName(Option option) => "MESH_" + Key(option).Replace('-', '_').ToUpperInvariant();

    /// <summary><c>--lease-ttl</c> → <c>lease-ttl</c>, the key in the file.</summary>
    public static string Key(Option option) => option.Name.TrimStart('-');

    private static bool IsHelp(Option option) => option is System.CommandLine.Help.HelpOption;

    private static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>An empty variable counts as unset (how a unit file clears an inherited one).</summary>
    private static string? NonEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;

    private static IEnumerable<string> FromTyped(object? value) => value switch
    {
        null => [],
        string s => [s],
        IEnumerable<string> many => many,
        bool b => [b ? "true" : "false"],
        IFormattable f => [f.ToString(null, CultureInfo.InvariantCulture)],
        _ => [value.ToString() ?? ""],
    };

    /// <summary>A flag named in a message, whole (<c>--api</c> but not inside <c>--api-group</c>).</summary>
    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9](?![\w-])")]
    private static partial Regex Flag();
}
