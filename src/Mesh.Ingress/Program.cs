using System.CommandLine;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Lab;

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
return await root.Parse(args).InvokeAsync();
