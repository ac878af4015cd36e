using System.CommandLine;
using System.Text.Json;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Cli;

/// <summary><c>mesh task add|rm|ls</c>: what a runtime calls when a container starts or stops.</summary>
public static class TaskCommands
{
    public static Command Build()
    {
        var task = new Command("task", "Register and remove a service's tasks (what a runtime calls)");

        var service = new Option<string>("--service") { Description = "The task's service", Required = true };
        var node = new Option<string>("--node") { Description = "The node the task runs on", Required = true };
        var netns = new Option<string?>("--netns") { Description = "Path of the task's network namespace: /run/netns/NAME, /var/run/netns/NAME or /proc/PID/ns/net (PID > 1)" };
        var resolvConf = new Option<string?>("--resolv-conf") { Description = "Have the node write the task's resolv.conf (nameserver 127.0.0.11) at this path, below one of its --resolv-conf-root directories (default /etc/netns, /run/mesh/tasks)" };
        var ip = new Option<string[]>("--ip") { Description = "NETWORK=IP to use instead of an allocated address (repeatable)" };
        var alias = new Option<string[]>("--alias") { Description = "Another DNS name of the task (repeatable; tasks may share one)" };
        var taskName = new Argument<string?>("name") { Description = "Task name (default SERVICE.N)", Arity = ArgumentArity.ZeroOrOne };
        var add = new Command("add", "Register a running task; prints it as JSON (with its allocated addresses)") { taskName, service, node, netns, ip, resolvConf, alias };
        add.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in parse.GetValue(ip) ?? [])
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new ArgumentException($"--ip '{pair}' must be NETWORK=IP");
                }

                addresses[pair[..eq]] = pair[(eq + 1)..];
            }

            var created = await CommonOptions.Store(parse).AddTaskAsync(new TaskSpec
            {
                Name = parse.GetValue(taskName),
                Service = parse.GetValue(service),
                Node = parse.GetValue(node),
                NetnsPath = parse.GetValue(netns),
                ResolvConfPath = parse.GetValue(resolvConf),
                Addresses = addresses,
                Aliases = parse.GetValue(alias) ?? [],
            }, ct);
            Console.WriteLine(JsonSerializer.Serialize(created, MeshJson.Options));
            return 0;
        }));

        var name = new Argument<string>("name") { Description = "Task name" };
        var rm = new Command("rm", "Remove a task: it stops receiving new connections on every node") { name };
        rm.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            await CommonOptions.Store(parse).RemoveTaskAsync(parse.GetValue(name)!, ct);
            Console.WriteLine(parse.GetValue(name));
            return 0;
        }));

        var filterService = new Option<string?>("--service") { Description = "Only this service's tasks" };
        var ls = new Command("ls", "List tasks") { filterService, CommonOptions.Json };
        ls.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var state = await CommonOptions.Store(parse).GetStateAsync(ct);
            var only = parse.GetValue(filterService);
            var tasks = state.Tasks.Where(t => only is null || t.Service == only).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
            if (parse.GetValue(CommonOptions.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(tasks, MeshJson.Options));
                return 0;
            }

            // Health is each node's own verdict (probed from its sandbox): the column shows the asked node's, as
            // STATUS@NODE; another node's view is its API's (--api), "-" a task whose service has no check.
            var health = await NodeHealthAsync(parse, ct);
            var verdicts = health?.Tasks.ToDictionary(h => h.Task, h => $"{h.Status}@{health.Node}", StringComparer.Ordinal);
            var checkedServices = state.Services.Where(s => s.HealthCheck is not null).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            TableWriter.Write(Console.Out, ["NAME", "SERVICE", "NODE", "STATE", "ADDRESSES", "ALIASES", "HEALTH"], tasks.Select(t => (IReadOnlyList<string>)
            [
                t.Name, t.Service, t.Node, System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(t.State.ToString()), string.Join(',', t.Addresses.Select(a => $"{a.Key}={a.Value}")), string.Join(',', t.Aliases),
                !checkedServices.Contains(t.Service) ? "-" : verdicts?.GetValueOrDefault(t.Name) ?? (health is null ? "?" : $"unknown@{health.Node}"),
            ]));
            return 0;
        }));

        task.Subcommands.Add(add);
        task.Subcommands.Add(rm);
        task.Subcommands.Add(ls);
        return task;
    }

    /// <summary>The asked node's health verdicts; null when its API has none (an older daemon).</summary>
    private static async Task<HealthChecks.NodeHealthView?> NodeHealthAsync(ParseResult parse, CancellationToken ct)
    {
        using var http = CommonOptions.Client(parse);
        try
        {
            return await ServiceCommands.ApiGet<HealthChecks.NodeHealthView>(http, parse.GetValue(CommonOptions.Api)!, "v1/health", ct);
        }
        catch (Mesh.Discovery.Model.NotFoundException)
        {
            return null;
        }
    }
}
