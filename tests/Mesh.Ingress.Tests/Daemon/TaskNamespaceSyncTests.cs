using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ingress.Resolver;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Daemon;

/// <summary>
/// Issue 9, on the task's node, with real namespaces: a task that names the host's namespace (in any spelling), the
/// daemon's own, the ingress sandbox, another task's namespace under another path (a bind mount), something that is
/// not a namespace, or a resolv.conf that is a FIFO, is refused on its own, with nothing installed for it and the
/// namespaces it named left as they were; every other task still converges in the same pass. The tasks come straight
/// from the store's state (as from etcd), not through the API's checks.
/// </summary>
public sealed class TaskNamespaceSyncTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` run by parallel tests deletes those.
    private readonly string _prefix = $"mpaths-{Environment.ProcessId}";
    private readonly string _resolvRoot = Directory.CreateTempSubdirectory("mesh-taskns-").FullName;
    private readonly GuardedRunner _runner = new();
    private TaskResolvers? _resolvers;

    private string A => $"/run/netns/{_prefix}-a";
    private string B => $"/run/netns/{_prefix}-b";
    private string Alias => $"/run/netns/{_prefix}-alias";
    private string Sandbox => $"{_prefix}-sbx";
    private string NotANamespace => $"/run/netns/{_prefix}-file";

    public async Task InitializeAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }

        await CleanAsync();
        foreach (var ns in new[] { "a", "b", "sbx" })
        {
            await Shell.CheckedAsync("ip", "netns", "add", $"{_prefix}-{ns}");
        }

        // Another spelling of namespace a: a second bind mount of the same nsfs inode.
        await File.WriteAllTextAsync(Alias, "");
        await Shell.CheckedAsync("mount", "--bind", A, Alias);
        await File.WriteAllTextAsync(NotANamespace, "just a file\n");

        // Something of the sandbox's own that a task's sync would delete (it converges `ip mesh` in a task's namespace).
        await Shell.CheckedAsync("ip", "netns", "exec", Sandbox, "nft", "add", "table", "ip", "mesh");
        await Shell.CheckedAsync("ip", "netns", "exec", Sandbox, "nft", "add", "chain", "ip", "mesh", "sandbox-marker");
    }

    public async Task DisposeAsync()
    {
        if (_resolvers is not null)
        {
            await _resolvers.DisposeAsync();
        }

        if (Environment.IsPrivilegedProcess)
        {
            await CleanAsync();
        }

        Directory.Delete(_resolvRoot, recursive: true);
    }

    [LabFact]
    public async Task Host_and_daemon_namespaces_are_refused_even_from_the_store_and_the_good_task_still_converges()
    {
        var (state, good) = await StateAsync(("web", A));
        var bad = new Dictionary<string, string>
        {
            ["host"] = "/proc/1/ns/net",
            ["self"] = "/proc/self/ns/net",
            ["double-slash"] = "/proc//1/ns/net",
            ["own-pid"] = $"/proc/{Environment.ProcessId}/ns/net",
            ["not-a-namespace"] = NotANamespace,
        };

        // The bad tasks come first in the store's order: before, the first failure ended the pass for everyone after it.
        state = state with { Tasks = [.. bad.Select(b => good[0] with { Name = b.Key, NetnsPath = b.Value }), .. state.Tasks] };
        var result = await SyncAsync(state);

        Assert.Equal(bad.Keys.Order(StringComparer.Ordinal), result.Errors.Keys);
        Assert.All(["host", "self", "double-slash"], t => Assert.StartsWith("netnsPath: '/proc/", result.Errors[t], StringComparison.Ordinal));

        // This test process stands for the daemon, and lives in the host's namespace.
        Assert.Matches("is the (host's|daemon's own) network namespace", result.Errors["own-pid"]);
        Assert.Contains("not a namespace file", result.Errors["not-a-namespace"], StringComparison.Ordinal);
        Assert.DoesNotContain(_runner.Commands, c => c.Contains("/proc/", StringComparison.Ordinal) || c.Contains(NotANamespace, StringComparison.Ordinal));
        Assert.Contains("dnat to ", await RulesAsync(A), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task The_sandbox_and_a_namespace_another_task_holds_under_another_path_are_refused_and_left_as_they_were()
    {
        var (state, _) = await StateAsync(("web", A), ("api", Alias), ("api", $"/var/run/netns/{Sandbox}"), ("api", B));
        var sandboxBefore = await SandboxTableAsync();

        var result = await SyncAsync(state);
        var rulesOfA = await RulesAsync(A);
        var second = await SyncAsync(state);

        Assert.Equal(["api.1", "api.2"], result.Errors.Keys);
        Assert.Contains("the network namespace of task web.1", result.Errors["api.1"], StringComparison.Ordinal);
        Assert.Contains("the ingress sandbox", result.Errors["api.2"], StringComparison.Ordinal);
        Assert.Equal(result.Errors, second.Errors);

        // The first task keeps its namespace and its rules (web publishes 8080, api 9090); the sandbox keeps its table.
        Assert.Contains("8080", rulesOfA, StringComparison.Ordinal);
        Assert.DoesNotContain("9090", rulesOfA, StringComparison.Ordinal);
        Assert.Equal(rulesOfA, await RulesAsync(A));
        Assert.Equal(sandboxBefore, await SandboxTableAsync());
        Assert.Contains("sandbox-marker", sandboxBefore, StringComparison.Ordinal);
        Assert.DoesNotContain(_runner.Commands, c => c.Contains(Alias, StringComparison.Ordinal) || c.Contains(Sandbox, StringComparison.Ordinal));

        // The task after them (api.3 in namespace b) converged in the same pass.
        Assert.Contains("9090", await RulesAsync(B), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task A_fifo_or_a_path_outside_the_roots_as_resolv_conf_fails_that_task_alone_without_hanging_the_pass()
    {
        var fifoDirectory = Directory.CreateDirectory(Path.Combine(_resolvRoot, "fifo")).FullName;
        var fifo = Path.Combine(fifoDirectory, "resolv.conf");
        await Shell.CheckedAsync("mkfifo", fifo);
        var (state, tasks) = await StateAsync(("web", A), ("api", B));
        state = state with
        {
            Tasks = [tasks[0] with { ResolvConfPath = fifo }, tasks[1] with { ResolvConfPath = "/etc/shadow" }],
        };
        var shadow = File.ReadAllBytes("/etc/shadow");

        var result = await SyncAsync(state).WaitAsync(TimeSpan.FromSeconds(60));

        // The error names the task, its namespace and the object that failed.
        Assert.StartsWith($"task web.1 (netns {A}): resolv.conf {fifo}: ", result.Errors["web.1"], StringComparison.Ordinal);
        Assert.Contains("not a regular file", result.Errors["web.1"], StringComparison.Ordinal);
        Assert.Contains("not under an allowed directory", result.Errors["api.1"], StringComparison.Ordinal);
        Assert.Equal(shadow, File.ReadAllBytes("/etc/shadow"));
        Assert.Equal("fifo", (await Shell.CheckedAsync("stat", "-c", "%F", fifo)).Trim());

        // A good resolv.conf path on the next pass: that task converges, the other's error stays its own.
        state = state with { Tasks = [state.Tasks[0] with { ResolvConfPath = Path.Combine(_resolvRoot, "web.1", "resolv.conf") }, state.Tasks[1]] };
        result = await SyncAsync(state);
        Assert.Equal(["api.1"], result.Errors.Keys);
        Assert.Contains("nameserver 127.0.0.11", await File.ReadAllTextAsync(Path.Combine(_resolvRoot, "web.1", "resolv.conf")), StringComparison.Ordinal);
    }

    /// <summary>
    /// Issue 13: a removed task's DNS listeners kept their sockets (and so its namespace) for ~90 s. They close in the
    /// pass that sees the task gone, while its namespace and rules stay; re-added, it listens on the same ports again.
    /// </summary>
    [LabFact]
    public async Task A_removed_tasks_dns_listeners_close_at_once_and_come_back_on_the_same_ports()
    {
        var (state, _) = await StateAsync(("web", A));
        Assert.Empty((await SyncAsync(state)).Errors);
        var listening = await ResolverSocketsAsync(A);
        Assert.Equal(2, listening.Count); // udp and tcp on 127.0.0.11

        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Empty((await SyncAsync(state with { Tasks = [] })).Errors);
        var after = await ResolverSocketsAsync(A);
        clock.Stop();

        Assert.True(after.Count == 0, $"still listening after removal: {string.Join(", ", after)}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the listeners closed only after {clock.Elapsed}");
        Assert.Contains("dnat to ", await RulesAsync(A), StringComparison.Ordinal); // the namespace keeps its rules
        Assert.Empty(_resolvers!.Namespaces);

        Assert.Empty((await SyncAsync(state)).Errors);
        Assert.Equal(listening, await ResolverSocketsAsync(A));
    }

    /// <summary>
    /// A runtime deleting a task's namespace changes nothing in the store: the task loop's wait ends when a namespace it
    /// serves is gone, so its legs go at once. Deleted while the pass was still running (after it looked), the namespace
    /// was missing from the wait's watch list and its legs stayed until the resync (T8z_a, full run 20).
    /// </summary>
    [LabFact]
    public async Task A_namespace_deleted_after_the_pass_looked_and_before_the_wait_began_ends_the_wait_at_once()
    {
        var (state, _) = await StateAsync(("web", B));
        var sync = await NewSyncAsync(state);
        Assert.Empty((await sync.SyncAsync(state, CancellationToken.None)).Errors);

        await Shell.CheckedAsync("ip", "netns", "del", $"{_prefix}-b");
        var wait = sync.NamespaceVanishedAsync(CancellationToken.None);
        Assert.Same(wait, await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(3))));

        // The next pass sees it gone and does not watch it again: the wait does not end at once a second time.
        Assert.Empty((await sync.SyncAsync(state, CancellationToken.None)).Errors);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(1.5));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sync.NamespaceVanishedAsync(cancel.Token));
    }

    /// <summary>The sockets listening on the embedded resolver's address in a namespace, as "udp 127.0.0.11:PORT".</summary>
    private static async Task<List<string>> ResolverSocketsAsync(string netns) =>
        (await Shell.CheckedAsync("nsenter", $"--net={netns}", "--", "ss", "-Hlntu"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length > 4 && f[4].StartsWith("127.0.0.11:", StringComparison.Ordinal))
            .Select(f => $"{f[0]} {f[4]}")
            .Order(StringComparer.Ordinal)
            .ToList();

    [LabFact]
    public void The_guard_refuses_the_host_and_own_namespace_by_inode_and_tells_spellings_of_one_namespace_apart_from_others()
    {
        var guard = new TaskNamespaceGuard(new NodeNetworkOptions { IngressSandbox = Sandbox });
        var reserved = guard.Reserved();

        Assert.Throws<ValidationException>(() => guard.Check("/proc/1/ns/net", reserved));
        Assert.Throws<TaskRefusedException>(() => guard.Check($"/proc/{Environment.ProcessId}/ns/net", reserved));
        Assert.Throws<TaskRefusedException>(() => guard.Check($"/run/netns/{Sandbox}", reserved));
        Assert.Equal(guard.Check(A, reserved), guard.Check(Alias, reserved));
        Assert.Equal(guard.Check(A, reserved), guard.Check($"/var/run/netns/{_prefix}-a", reserved));
        Assert.NotEqual(guard.Check(A, reserved), guard.Check(B, reserved));
        Assert.Throws<FileNotFoundException>(() => guard.Check($"/run/netns/{_prefix}-missing", reserved));
        Assert.Throws<IOException>(() => guard.Check(NotANamespace, reserved));
    }

    /// <summary>A store with services web (8080→80) and api (9090→90) and one task per (service, netns), in order.</summary>
    private static async Task<(ClusterState State, List<ServiceTask> Tasks)> StateAsync(params (string Service, string Netns)[] tasks)
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        await store.CreateServiceAsync(new ServiceSpec { Name = "api", Ports = [new PublishedPort(9090, 90)] });
        var added = new List<ServiceTask>();
        foreach (var (service, netns) in tasks)
        {
            added.Add(await store.AddTaskAsync(new TaskSpec { Service = service, Node = "n1", NetnsPath = netns }));
        }

        return (await store.GetStateAsync(), added);
    }

    private async Task<TaskSyncResult> SyncAsync(ClusterState state) => await (await NewSyncAsync(state)).SyncAsync(state, CancellationToken.None);

    private async Task<TaskNamespaceSync> NewSyncAsync(ClusterState state)
    {
        var network = new NodeNetworkOptions { IngressSandbox = Sandbox };
        var flavour = await IptablesFlavour.DetectAsync(_runner, CancellationToken.None);
        var nft = new NfTablesExecutor();
        _resolvers ??= new TaskResolvers(new ClusterDnsAuthority(), [], NullLoggerFactory.Instance);
        _resolvers.Update(state);
        var cleanup = new DataplaneSwitchCleanup(null, NullLogger<DataplaneSwitchCleanup>.Instance);
        var taskRules = new TaskRulesWriter(new IptablesExecutor(_runner, flavour), nft, true, _runner, NullLogger<TaskRulesWriter>.Instance);
        return new TaskNamespaceSync(
            new NodePlanner(true, network, new IpvsOptions()),
            new TaskNamespaceExecutor(
                new NftablesDataplane(nft, new IngressSandbox(new NetlinkLinks(), network)),
                cleanup,
                taskRules,
                new TaskResolvConfWriter([_resolvRoot], "/etc/resolv.conf"),
                new ClientReplyRoutes(new NetlinkLinks())),
            cleanup,
            taskRules,
            nft,
            _resolvers,
            new TaskNamespaceGuard(network),
            new DaemonOptions { Node = "n1", AdvertiseAddress = "198.18.0.11", Network = network },
            Telemetry.TestMeterFactory.Telemetry(),
            NullLogger<TaskNamespaceSync>.Instance);
    }

    /// <summary>The task's Mesh table (the nftables dataplane's ingress and DNS rules), empty when it has none.</summary>
    private static async Task<string> RulesAsync(string netns) =>
        (await Shell.RunAsync("nsenter", $"--net={netns}", "--", "nft", "list", "table", "ip", TaskIngressTable.Name)).Stdout;

    private Task<string> SandboxTableAsync() => Shell.CheckedAsync("ip", "netns", "exec", Sandbox, "nft", "list", "table", "ip", "mesh");

    private async Task CleanAsync()
    {
        await Shell.RunAsync("umount", Alias);
        if (Directory.Exists("/run/netns"))
        {
            File.Delete(Alias);
            File.Delete(NotANamespace);
        }

        foreach (var ns in new[] { "a", "b", "sbx" })
        {
            await Shell.RunAsync("ip", "netns", "del", $"{_prefix}-{ns}");
        }
    }

    /// <summary>The real runner, recording every command; it refuses outright to enter a namespace outside the test's
    /// own (so a broken guard fails this test instead of changing the host's rules).</summary>
    private sealed class GuardedRunner : ICommandRunner
    {
        private readonly ProcessCommandRunner _inner = new(TimeSpan.FromSeconds(30));

        public List<string> Commands { get; } = [];

        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
        {
            var line = CommandRunnerExtensions.Describe(file, arguments);
            lock (Commands)
            {
                Commands.Add(line);
            }

            if (file == "nsenter" && !arguments.Any(a => a.StartsWith("--net=/run/netns/mpaths-", StringComparison.Ordinal)))
            {
                throw new InvalidOperationException($"test guard: refusing to run '{line}' outside the test's namespaces");
            }

            return _inner.RunAsync(file, arguments, standardInput, cancellationToken);
        }
    }
}
