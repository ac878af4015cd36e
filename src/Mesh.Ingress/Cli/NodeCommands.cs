using System.CommandLine;
using System.Text.Json;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Cli;

/// <summary><c>mesh node ls|rm</c>: the registered nodes; removing one that is gone frees its ingress address.</summary>
public static class NodeCommands
{
    public static Command Build()
    {
        var node = new Command("node", "List registered nodes and remove ones that are gone");

        var ls = new Command("ls", "List registered nodes") { CommonOptions.Json };
        ls.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var state = await CommonOptions.Store(parse).GetStateAsync(ct);
            if (parse.GetValue(CommonOptions.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(state.Nodes, MeshJson.Options));
                return 0;
            }

            TableWriter.Write(Console.Out, ["NAME", "ADVERTISE", "INGRESS-SANDBOX", "TASKS"], state.Nodes.OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => (IReadOnlyList<string>)
            [
                n.Name, n.AdvertiseAddress, n.IngressSandboxIp,
                state.Tasks.Count(t => t.Node == n.Name).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ]));
            return 0;
        }));

        var name = new Argument<string>("name") { Description = "Node name" };
        var rm = new Command(
            "rm",
            "Remove a node that is gone, freeing its ingress address. Refused while tasks run on it (mesh task rm them first); stop its daemon first, or it registers again")
        { name };
        rm.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            await CommonOptions.Store(parse).RemoveNodeAsync(parse.GetValue(name)!, ct);
            Console.WriteLine(parse.GetValue(name));
            return 0;
        }));

        node.Subcommands.Add(ls);
        node.Subcommands.Add(rm);
        return node;
    }
}
