using System.CommandLine;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Cni;
using Mesh.Ingress.Lab;

// The CNI plugin is started once per container event by the runtime, which waits for it: skip building the command tree.
if (args is ["cni", "plugin"])
{
    return await CniMain.RunAsync();
}

var root = new RootCommand("mesh — a routing-mesh ingress load balancer: a published port answers on every node");
foreach (var parent in new[] { ServiceCommands.Build(), TaskCommands.Build(), NodeCommands.Build() })
{
    foreach (var option in CommonOptions.ClientOptions)
    {
        parent.Options.Add(option);
    }

    root.Subcommands.Add(parent);
}

root.Subcommands.Add(DaemonCommand.Build());
root.Subcommands.Add(LabCommands.Build());
root.Subcommands.Add(DoctorCommand.Build());
root.Subcommands.Add(CaCommands.Build());
root.Subcommands.Add(TraceCommand.Build());
root.Subcommands.Add(CniCommands.Build());
var parsed = root.Parse(args);
var exit = await parsed.InvokeAsync();

// System.CommandLine reports a parse error (unknown command or option, missing argument) with exit 1; the CLI's
// contract is 2 for bad usage, 1 only for a request the daemon rejected.
return parsed.Errors.Count > 0 ? CliErrors.Usage : exit;
