using System.CommandLine;
using Mesh.Discovery.Model;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Lab;

public static class LabCommands
{
    public static Command Build()
    {
        var lab = new Command("lab", "A whole cluster on this machine, in network namespaces");

        var nodes = new Option<int>("--nodes") { Description = "Number of nodes (the last one runs no task)", DefaultValueFactory = _ => 3 };
        var replicas = new Option<int>("--replicas") { Description = "Replicas of the demo service 'web'", DefaultValueFactory = _ => 3 };
        var dataplane = new Option<string>("--dataplane") { Description = "auto, ipvs or nftables", DefaultValueFactory = _ => "auto" };
        var store = new Option<string>("--store") { Description = "embedded (node 1 holds it) or etcd (a real etcd on the underlay)", DefaultValueFactory = _ => "embedded" };
        var members = new Option<int>("--etcd-members") { Description = "etcd members with --store etcd: 1 or 3", DefaultValueFactory = _ => 1 };
        var leaseTtl = new Option<int>("--lease-ttl") { Description = "With etcd: seconds before a silent node's tasks leave every backend", DefaultValueFactory = _ => 10 };
        var runtime = new Option<string>("--runtime") { Description = "What runs the tasks: netns (namespaces running 'mesh lab serve') or podman (containers of localhost/mesh-task, attached by mesh-cni)", DefaultValueFactory = _ => LabPlan.NetnsRuntime };
        var up = new Command("up", "Build the lab and start a daemon per node (converges an existing lab)") { nodes, replicas, dataplane, store, members, leaseTtl, runtime };
        up.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var n = parse.GetValue(nodes);
            var r = parse.GetValue(replicas);
            if (n is < 1 or > 50)
            {
                throw new ArgumentException($"--nodes {n}: use 1 to 50");
            }

            if (r is < 0 or > 200)
            {
                throw new ArgumentException($"--replicas {r}: use 0 to 200");
            }

            var dp = parse.GetValue(dataplane)!;
            if (dp is not ("auto" or "ipvs" or "nftables"))
            {
                throw new ArgumentException($"--dataplane '{dp}' must be auto, ipvs or nftables");
            }

            var st = parse.GetValue(store)!;
            if (st is not ("embedded" or "etcd"))
            {
                throw new ArgumentException($"--store '{st}' must be embedded or etcd");
            }

            var m = parse.GetValue(members);
            if (m is not (1 or 3))
            {
                throw new ArgumentException($"--etcd-members {m}: use 1 or 3");
            }

            var ttl = parse.GetValue(leaseTtl);
            if (ttl is < 2 or > 3600)
            {
                throw new ArgumentException($"--lease-ttl {ttl}: use 2 to 3600 seconds");
            }

            var rt = parse.GetValue(runtime)!;
            if (rt is not (LabPlan.NetnsRuntime or LabPlan.PodmanRuntime))
            {
                throw new ArgumentException($"--runtime '{rt}' must be netns or podman");
            }

            await new LabCluster(new ProcessCommandRunner(), Console.Out, Patience()).UpAsync(new LabPlan(n, r, dp, st, m, ttl, rt), ct);
            return 0;
        }));

        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var status = new Command("status", "Nodes, services, tasks and each node's dataplane") { json };
        status.SetAction((parse, ct) => CliErrors.RunAsync(() => new LabCluster(new ProcessCommandRunner(), Console.Out, Patience()).StatusAsync(parse.GetValue(json), ct)));

        var down = new Command("down", "Remove every namespace, link, rule and process the lab made (safe to repeat)");
        down.SetAction((_, ct) => CliErrors.RunAsync(async () =>
        {
            await new LabCluster(new ProcessCommandRunner(), Console.Out).DownAsync(ct);
            return 0;
        }));

        var task = new Option<string>("--task") { Required = true };
        var node = new Option<string>("--node") { Required = true };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 80 };
        var serve = new Command("serve", "The lab's task server: answers HTTP and UDP with 'TASK NODE IP peer=… xff=… proxy=…' (accepts a PROXY v2 header); GET /healthz answers 200, or what POST /lab/health?status=N from 127.0.0.1 set") { task, node, port };
        serve.SetAction((parse, ct) => LabServer.RunAsync(parse.GetValue(task)!, parse.GetValue(node)!, parse.GetValue(port), ct));

        var runTask = new Argument<string>("task") { Description = "The task's name, <service>.<k>; the service must exist" };
        var onNode = new Option<int>("--node") { Description = "The node's number: 1 is mesh-n1", Required = true };
        var run = new Command("run", "Start a task on a node of the lab as its runtime does (netns: a namespace, the lab's task server, its registration, a leg on each network of its service; podman: a container on the service's mesh network)") { runTask, onNode };
        run.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var name = CliErrors.Argument("task", () => Validate.DottedName("task", parse.GetValue(runTask)));
            var service = name.Split('.')[0];
            if (name.Split('.') is not [_, var k] || !int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
            {
                throw new ArgumentException($"task '{name}' must be <service>.<k>, as web.4");
            }

            var n = parse.GetValue(onNode);
            if (n is < 1 or > 50 || !LinkTool.NamespaceExists(LabPlan.NodeName(n)))
            {
                throw new ArgumentException($"--node {n}: there is no lab node mesh-n{n} (is the lab up? `mesh lab status`)");
            }

            // Checked before anything is made: a task of an unknown service would leave a namespace and a server behind.
            var store = ApiClientFactory.Store(LabPlan.Api(LabPlan.NodeName(1)));
            var state = await store.GetStateAsync(ct);
            if (state.Services.All(s => s.Name != service))
            {
                throw new ArgumentException($"task '{name}': there is no service '{service}' (mesh service create {service} ...)");
            }

            var task = await new LabCluster(new ProcessCommandRunner(), Console.Out, Patience()).StartTaskAsync(store, name, n, ct);
            Console.WriteLine($"{task.Name} runs on {task.Node}: {string.Join(", ", task.Addresses.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key} {a.Value}"))}");
            return 0;
        }));

        var busybox = new Option<string>("--busybox") { Description = "A statically linked busybox (Debian's busybox-static)", DefaultValueFactory = _ => Podman.TaskImage.DefaultBusybox };
        var image = new Command("image", $"Build the task image {Podman.TaskImage.Name} from busybox-static and import it into the lab's podman storage (no registry)") { busybox };
        image.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var id = await new Podman.TaskImage(new ProcessCommandRunner(), parse.GetValue(busybox)!).BuildAsync(ct);
            Console.WriteLine($"{Podman.TaskImage.Name} {id}");
            Console.WriteLine($"in the lab's podman storage: podman {string.Join(' ', Podman.LabPodman.GlobalArguments)} images");
            return 0;
        }));

        lab.Subcommands.Add(up);
        lab.Subcommands.Add(status);
        lab.Subcommands.Add(down);
        lab.Subcommands.Add(serve);
        lab.Subcommands.Add(run);
        lab.Subcommands.Add(image);
        return lab;
    }

    /// <summary>
    /// MESH_LAB_PATIENCE multiplies the lab's waits and request timeouts: tests/kernel sets it where .NET runs
    /// under an emulated CPU. Read here, at the command's edge, and validated like any option.
    /// </summary>
    private static double Patience()
    {
        var text = Environment.GetEnvironmentVariable("MESH_LAB_PATIENCE");
        if (string.IsNullOrEmpty(text))
        {
            return 1;
        }

        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var patience) || patience is < 1 or > 100)
        {
            throw new ArgumentException($"MESH_LAB_PATIENCE '{text}' must be a number from 1 to 100");
        }

        return patience;
    }
}
