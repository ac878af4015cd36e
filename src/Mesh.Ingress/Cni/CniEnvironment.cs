using System.Collections;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Cni;

/// <summary>
/// The runtime's half of a CNI call, read from the environment (spec "Parameters"): which command, for which
/// container, in which namespace, with which interface name. Validated here, once: a missing or malformed variable is
/// error 4 naming it, before anything is asked of the daemon or the kernel.
/// </summary>
public sealed record CniEnvironment
{
    /// <summary>Linux interface names are at most 15 bytes (IFNAMSIZ - 1).</summary>
    public const int MaxInterfaceName = 15;

    public required CniCommand Command { get; init; }

    public string? ContainerId { get; init; }

    public string? Netns { get; init; }

    public string? InterfaceName { get; init; }

    /// <summary>CNI_ARGS as key/value pairs (<c>K1=V1;K2=V2</c>); Mesh uses none and ignores them, as IgnoreUnknown asks.</summary>
    public IReadOnlyDictionary<string, string> Args { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<string> Path { get; init; } = [];

    public static CniEnvironment Read() => Parse(Environment.GetEnvironmentVariables());

    public static CniEnvironment Parse(IDictionary variables)
    {
        string? Get(string name) => variables[name] is string s && s.Length > 0 ? s : null;

        var commandText = Get("CNI_COMMAND") ?? throw Invalid("CNI_COMMAND is not set");
        CniCommand command = commandText switch
        {
            "ADD" => CniCommand.Add,
            "DEL" => CniCommand.Del,
            "CHECK" => CniCommand.Check,
            "VERSION" => CniCommand.Version,
            "STATUS" => CniCommand.Status,
            "GC" => CniCommand.Gc,
            _ => throw Invalid($"CNI_COMMAND '{Validate.Printable(Bound(commandText))}' is not ADD, DEL, CHECK, VERSION, STATUS or GC"),
        };
        if (command is CniCommand.Version or CniCommand.Status or CniCommand.Gc)
        {
            return new CniEnvironment { Command = command, Path = SplitPath(Get("CNI_PATH")) };
        }

        var containerId = Get("CNI_CONTAINERID") ?? throw Invalid("CNI_CONTAINERID is not set");
        try
        {
            Validate.ContainerId("CNI_CONTAINERID", containerId);
        }
        catch (ValidationException e)
        {
            throw Invalid(e.Message);
        }

        var ifname = Get("CNI_IFNAME") ?? throw Invalid("CNI_IFNAME is not set");
        CheckInterfaceName("CNI_IFNAME", ifname);

        // DEL may come without a namespace (it is already gone); ADD and CHECK need one.
        var netns = Get("CNI_NETNS");
        if (netns is null && command != CniCommand.Del)
        {
            throw Invalid("CNI_NETNS is not set");
        }

        if (netns is not null)
        {
            try
            {
                TaskPaths.NetnsPath("CNI_NETNS", netns);
            }
            catch (ValidationException e)
            {
                throw Invalid(e.Message);
            }
        }

        return new CniEnvironment
        {
            Command = command,
            ContainerId = containerId,
            InterfaceName = ifname,
            Netns = netns,
            Args = ParseArgs(Get("CNI_ARGS")),
            Path = SplitPath(Get("CNI_PATH")),
        };
    }

    /// <summary>What the kernel takes as an interface name: 1-15 bytes, no '/', ':' or whitespace, not '.' or '..'.</summary>
    public static void CheckInterfaceName(string variable, string name)
    {
        if (name.Length > MaxInterfaceName || name is "." or ".." || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c) || c > '~'))
        {
            throw Invalid($"{variable} '{Validate.Printable(Bound(name))}' is not an interface name (1-{MaxInterfaceName} printable ASCII characters, no '/', ':' or space)");
        }
    }

    private static Dictionary<string, string> ParseArgs(string? text)
    {
        var args = new Dictionary<string, string>(StringComparer.Ordinal);
        if (text is null)
        {
            return args;
        }

        foreach (var pair in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw Invalid($"CNI_ARGS '{Validate.Printable(Bound(text))}' is not a list of KEY=VALUE pairs separated by ';'");
            }

            args[pair[..eq]] = pair[(eq + 1)..];
        }

        return args;
    }

    private static IReadOnlyList<string> SplitPath(string? text) => text?.Split(':', StringSplitOptions.RemoveEmptyEntries) ?? [];

    private static string Bound(string s) => s.Length > 80 ? s[..80] + "…" : s;

    private static CniException Invalid(string message) => new(CniErrorCode.InvalidEnvironment, message);
}
