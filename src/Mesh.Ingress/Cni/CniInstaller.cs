using System.Buffers;
using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Ingress.Lab;

namespace Mesh.Ingress.Cni;

/// <summary>
/// <c>mesh cni install</c>: the plugin in the runtime's plugin directory, and one network configuration list per
/// service (<c>mesh-&lt;service&gt;.conflist</c>, network <c>mesh-&lt;service&gt;</c>) in its configuration directory.
/// The plugin is a copy of the native <c>mesh-cni</c> (src/Mesh.Cni, built ahead of time beside the mesh binary) when
/// there is one, else a two-line script that runs this very binary as <c>mesh cni plugin</c>: the same code either
/// way, the native one without a .NET runtime's start and JIT on every container event. Lists of services that are
/// gone are removed; files Mesh did not write are never touched. Re-run it after services change.
/// </summary>
/// <param name="nativePlugin">The native plugin to copy, or null to write the script (<see cref="NativePluginBeside"/>).</param>
public sealed class CniInstaller(string binDir, string confDir, string api, int mtu, string? nativePlugin = null)
{
    public const string PluginName = "mesh-cni";

    /// <summary>The native plugin in <paramref name="directory"/> (the mesh binary's own), or null when it was not built (a Debug build).</summary>
    public static string? NativePluginBeside(string directory) =>
        Path.Combine(directory, PluginName) is var path && File.Exists(path) ? path : null;

    /// <summary>The cniVersion written: 1.0.0, which podman 4.3's libcni and every current runtime read.</summary>
    public const string ConfigVersion = "1.0.0";

    public static string NetworkOf(string service) => "mesh-" + service;

    public string PluginPath => Path.Combine(binDir, PluginName);

    public string ConfigPath(string service) => Path.Combine(confDir, NetworkOf(service) + ".conflist");

    public IReadOnlyList<string> Install(IEnumerable<string> services, TextWriter output)
    {
        Directory.CreateDirectory(binDir);
        Directory.CreateDirectory(confDir);
        const UnixFileMode executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        if (nativePlugin is not null)
        {
            CopyAtomically(nativePlugin, PluginPath, executable);
        }
        else
        {
            WriteAtomically(PluginPath, PluginScript(), executable);
        }

        output.WriteLine($"plugin  {PluginPath}");

        var wanted = services.Order(StringComparer.Ordinal).ToArray();
        foreach (var service in wanted)
        {
            WriteAtomically(ConfigPath(service), Conflist(service), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            output.WriteLine($"network {NetworkOf(service)}  {ConfigPath(service)}");
        }

        var keep = wanted.Select(ConfigPath).ToHashSet(StringComparer.Ordinal);
        foreach (var stale in Directory.EnumerateFiles(confDir, "mesh-*.conflist").Where(f => !keep.Contains(f) && IsOurs(f)))
        {
            File.Delete(stale);
            output.WriteLine($"removed {stale} (its service is gone)");
        }

        return wanted;
    }

    /// <summary>
    /// The plugin is a script, not a copy or a symlink of the binary: the apphost resolves its own path through
    /// /proc/self/exe (a symlink's name is lost), and the framework-dependent binary needs its directory beside it.
    /// The script's only dynamic text is this binary's absolute path, single-quoted and refused if it has a quote.
    /// </summary>
    public static string PluginScript()
    {
        var (file, prefix) = MeshExecutable.Command();
        string[] argv = [file, .. prefix, "cni", "plugin"];
        if (argv.Any(a => a.Contains('\'', StringComparison.Ordinal) || a.Any(char.IsControl)))
        {
            throw new InvalidOperationException($"cannot write a plugin script for {file}: its path has a quote or control character");
        }

        return "#!/bin/sh\n# Written by 'mesh cni install': the Mesh CNI plugin is the mesh binary itself.\nexec " + string.Join(' ', argv.Select(a => $"'{a}'")) + "\n";
    }

    public string Conflist(string service)
    {
        Validate.Label("service", service);
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", ConfigVersion);
            w.WriteString("name", NetworkOf(service));
            w.WriteStartArray("plugins");
            w.WriteStartObject();
            w.WriteString("type", PluginName);
            w.WriteString("service", service);
            w.WriteString("api", api);
            w.WriteNumber("mtu", mtu);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }

    /// <summary>A list Mesh wrote: its first plugin is mesh-cni. Anything else (unreadable, someone else's) is left alone.</summary>
    private static bool IsOurs(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.TryGetProperty("plugins", out var plugins) && plugins.ValueKind == JsonValueKind.Array
                && plugins.GetArrayLength() > 0 && plugins[0].TryGetProperty("type", out var type) && type.ValueEquals(PluginName);
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Write beside, then rename: a runtime reading the directory never sees half a file.</summary>
    private static void WriteAtomically(string path, string text, UnixFileMode mode)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.SetUnixFileMode(temp, mode);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Copy beside, then rename: a runtime never runs half a binary, and one running the old plugin keeps its file
    /// (writing over an executable that runs fails with ETXTBSY).
    /// </summary>
    private static void CopyAtomically(string source, string path, UnixFileMode mode)
    {
        var temp = path + ".tmp";
        File.Copy(source, temp, overwrite: true);
        File.SetUnixFileMode(temp, mode);
        File.Move(temp, path, overwrite: true);
    }
}
