using System.CommandLine;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Cli;

/// <summary><c>mesh doctor</c>: what this kernel and machine offer, which dataplane auto picks, and what to do about gaps.</summary>
public static class DoctorCommand
{
    public static Command Build()
    {
        var dataplane = new Option<string>("--dataplane") { Description = "The dataplane to check for: auto (default), ipvs or nftables", DefaultValueFactory = _ => "auto" };
        var command = new Command("doctor", "Try the kernel features Mesh needs (in a throw-away network namespace); exit 0 when the chosen dataplane has all it needs") { dataplane };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var requested = parse.GetValue(dataplane) switch
            {
                "auto" => DataplaneChoice.Auto,
                "ipvs" => DataplaneChoice.Ipvs,
                "nftables" => DataplaneChoice.Nftables,
                var other => throw new ArgumentException($"--dataplane '{other}' must be auto, ipvs or nftables"),
            };
            var doctor = new DoctorChecks(new ProcessCommandRunner(TimeSpan.FromSeconds(30)), Environment.IsPrivilegedProcess, KernelFeatures.IpvsStatus());
            var (checks, choice, reason) = await doctor.RunAsync(requested, ct);
            return DoctorChecks.Report(Console.Out, checks, choice, reason);
        }));
        return command;
    }
}
