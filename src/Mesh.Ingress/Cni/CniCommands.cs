using System.CommandLine;
using Mesh.Discovery.Model;
using Mesh.Ingress.Cli;

namespace Mesh.Ingress.Cni;

/// <summary><c>mesh cni install</c> and <c>mesh cni plugin</c> (what the installed <c>mesh-cni</c> script runs).</summary>
public static class CniCommands
{
    public static Command Build()
    {
        var binDir = new Option<string>("--bin-dir") { Description = "Where the runtime looks for CNI plugins", DefaultValueFactory = _ => "/opt/cni/bin" };
        var confDir = new Option<string>("--conf-dir") { Description = "Where the runtime reads network configurations", DefaultValueFactory = _ => "/etc/cni/net.d" };
        var mtu = new Option<int>("--mtu") { Description = "MTU of the container legs (the overlay's: underlay MTU minus 50)", DefaultValueFactory = _ => CniNetworkConfig.DefaultMtu };
        var install = new Command("install", "Install the mesh-cni plugin and one network configuration per service (mesh-<service>); re-run after services change")
        {
            binDir, confDir, mtu,
        };
        install.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var api = parse.GetValue(CommonOptions.Api)!;
            if (!api.StartsWith("unix:///", StringComparison.Ordinal))
            {
                throw new ValidationException("--api", $"'{api}' is not a unix socket: the plugin talks to the daemon on its own host (unix:///run/mesh/mesh.sock)");
            }

            var m = parse.GetValue(mtu);
            if (m is < 576 or > 9000)
            {
                throw new ValidationException("--mtu", $"{m} is outside 576-9000");
            }

            var store = ApiClientFactory.Store(api);
            var services = (await store.GetStateAsync(ct)).Services.Select(s => s.Name);
            new CniInstaller(Absolute("--bin-dir", parse.GetValue(binDir)!), Absolute("--conf-dir", parse.GetValue(confDir)!), api, m, CniInstaller.NativePluginBeside(AppContext.BaseDirectory))
                .Install(services, Console.Out);
            return 0;
        }));

        var plugin = new Command("plugin", "Run as the CNI plugin: CNI_* environment and the network configuration on stdin, result JSON on stdout");
        plugin.SetAction((_, _) => CniMain.RunAsync());
        var cni = new Command("cni", "Attach containers of a CNI runtime (podman, containerd, CRI-O) to the mesh") { install, plugin };
        cni.Options.Add(CommonOptions.Api);
        return cni;
    }

    private static string Absolute(string option, string path) =>
        Path.IsPathFullyQualified(path) && !path.Any(char.IsControl) ? Path.GetFullPath(path) : throw new ValidationException(option, $"'{Validate.Printable(path)}' is not an absolute path");
}
