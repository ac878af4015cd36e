using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Tests.EndToEnd;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// The ruleset generation on this kernel, and the executors (nf_tables over netlink, iptables-nft) renewing their trust with it
/// instead of reading the kernel at each resync, while still seeing (and repairing) what anyone else commits.
/// </summary>
public sealed class NftGenerationTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` in parallel tests deletes those.
    private readonly string _ns = $"nftgen-{Environment.ProcessId}";
    private readonly CountingRunner _runner = new();
    private readonly NetlinkNftGeneration _generation = new();
    private NetworkNamespacePath Netns => NetworkNamespacePath.Named(_ns);

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
            await Shell.CheckedAsync("ip", "netns", "add", _ns);
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
        }
    }

    [LabFact]
    public async Task Every_commit_by_anyone_moves_the_generation_by_one_and_reads_do_not()
    {
        var start = _generation.Read(Netns);
        Assert.NotNull(start);
        await Nft("add table ip theirs");
        Assert.Equal(start + 1, _generation.Read(Netns));
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "ruleset");
        Assert.Equal(start + 1, _generation.Read(Netns));
        Assert.Null(_generation.Read(NetworkNamespacePath.Named("nftgen-no-such-namespace")));
    }

    [LabFact]
    public async Task An_unchanged_generation_renews_the_trust_without_a_read_and_a_changed_one_reads_and_repairs()
    {
        var desired = IngressSandboxTable.Build(ClusterState.Empty, "10.255.0.2");
        var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1));
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);

        // The trust ran out (a resync), nobody committed: nothing is read, nothing applied.
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);

        // Someone else committed (another table): the change log says so, nothing is read, and trusted again after.
        await Nft("add table ip theirs");
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);

        // Someone deleted Mesh's table: read, and put back.
        await Nft("delete table ip mesh");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(2, nft.Reads);
        Assert.Contains("table ip mesh", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "tables"), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task A_change_planned_on_knowledge_someone_else_made_stale_is_not_trusted_and_the_drift_is_repaired()
    {
        var state = TwoServices();
        var before = IngressSandboxTable.Build(state, "10.255.0.2");
        var after = IngressSandboxTable.Build(Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "web", Node = "n1" }).State, "10.255.0.2");
        var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1000));
        Assert.True(await nft.ConvergeAsync(Netns, before, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));

        // Within the trust, someone empties api's picking chain and deletes its task's slot (one nft, one commit); then
        // Mesh applies a change of its own (a second web task).
        await Nft("flush chain ip mesh pick-rr-1; delete element ip mesh backends { tcp . 9090 . 0 }");
        Assert.True(await nft.ConvergeAsync(Netns, after, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));

        // At the resync the generation cannot vouch for what Mesh wrote on stale knowledge: read, and api repaired.
        await Task.Delay(1100);
        var reads = nft.Reads;
        Assert.True(await nft.ConvergeAsync(Netns, after, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(reads + 1, nft.Reads);
        Assert.Contains("dnat", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "chain", "ip", "mesh", "pick-rr-1"), StringComparison.Ordinal);
        Assert.Contains("tcp . 9090 . 0 :", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "map", "ip", "mesh", "backends"), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task Rules_appended_by_hand_to_a_picking_chain_or_a_skeleton_chain_and_a_changed_element_are_repaired_at_the_resync()
    {
        var desired = IngressSandboxTable.Build(TwoServices(), "10.255.0.2");
        var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1));
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        var planned = await ListAsync(_ns);

        await Nft("add rule ip mesh dispatch counter drop");
        await Nft("add rule ip mesh pick-rr-1 counter drop");
        await Nft("add rule ip mesh source-nat counter");
        await Nft("delete element ip mesh published-ports { tcp . 9090 }");
        await Nft("add element ip mesh published-ports { udp . 9999 : 0x00000777 }");
        Assert.NotEqual(planned, await ListAsync(_ns));

        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(planned, await ListAsync(_ns));
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
    }

    [LabFact]
    public async Task A_commit_to_another_table_is_followed_in_the_change_log_without_a_read()
    {
        var desired = IngressSandboxTable.Build(TwoServices(), "10.255.0.2");
        using var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1));
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        var planned = await ListAsync(_ns);

        // Other tables, another family, iptables-nft: several transactions, none in Mesh's table.
        await Nft("add table ip theirs; add chain ip theirs c; add rule ip theirs c counter");
        await Nft("add table inet mesh; add set inet mesh s { type ipv4_addr; }; add element inet mesh s { 10.0.0.1 }");
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT");
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);
        Assert.Equal(1, nft.Followed);
        Assert.Equal(planned, await ListAsync(_ns));

        // Still exact: Mesh's own change afterwards is planned from the memory and trusted by the generation it made.
        var after = IngressSandboxTable.Build(Mesh.Discovery.Store.StateTransitions.AddTask(TwoServices(), new() { Service = "web", Node = "n2" }).State, "10.255.0.2");
        Assert.True(await nft.ConvergeAsync(Netns, after, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, after, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);
        await Nft("add table ip theirs2");
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, after, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);
        Assert.Equal(2, nft.Followed);
    }

    [LabFact]
    public async Task A_table_followed_by_its_change_log_keeps_one_netlink_handle_across_changes_until_forgotten()
    {
        // Closing an nf_tables socket right after a transaction that deleted an element waits for the kernel (an RCU
        // grace period): the sandbox's table keeps the handle its cold write opened for the changes that follow.
        using var nft = new NfTablesExecutor(TimeSpan.FromMinutes(1));
        var state = TwoServices();
        Assert.True(await nft.ConvergeAsync(Netns, IngressSandboxTable.Build(state, "10.255.0.2"), Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        for (var i = 0; i < 3; i++)
        {
            var added = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "web", Node = "n2" }).State;
            Assert.True(await nft.ConvergeAsync(Netns, IngressSandboxTable.Build(added, "10.255.0.2"), Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
            Assert.True(await nft.ConvergeAsync(Netns, IngressSandboxTable.Build(state, "10.255.0.2"), Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        }

        Assert.Equal(1, nft.HandlesOpened);
        Assert.Equal(1, nft.Reads);
        using (var check = NfTablesHandle.Open(Netns.Path))
        {
            Assert.Null(NftPlanner.Plan(IngressSandboxTable.Build(state, "10.255.0.2"), NftTableState.Read(check, Family.Ip, IngressSandboxTable.Name))); // the kernel holds the last plan
        }

        // A forgotten namespace's handle goes with its log; the next converge opens (and reads) anew.
        nft.Forget(Netns);
        Assert.False(await nft.ConvergeAsync(Netns, IngressSandboxTable.Build(state, "10.255.0.2"), Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(2, nft.HandlesOpened);
        Assert.Equal(2, nft.Reads);
    }

    [LabFact]
    public async Task Elements_added_and_deleted_by_hand_in_Mesh_maps_are_repaired_from_the_change_log_without_a_read()
    {
        var desired = IngressSandboxTable.Build(TwoServices(), "10.255.0.2");
        using var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1));
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        var planned = await ListAsync(_ns);

        await Nft("add element ip mesh backends { tcp . 7777 . 0 : 10.0.0.9 . 80 }");
        await Nft("delete element ip mesh published-ports { tcp . 9090 }; add table ip theirs");
        await Nft("delete element ip mesh backends { tcp . 8080 . 0 }; add element ip mesh backends { tcp . 8080 . 0 : 10.0.0.66 . 80 }");
        Assert.NotEqual(planned, await ListAsync(_ns));

        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);
        Assert.Equal(planned, await ListAsync(_ns));

        // The repair was Mesh's own commit: the next resync trusts the generation it made.
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads);
    }

    [LabFact]
    public async Task A_rule_appended_by_hand_to_a_skeleton_chain_reads_back_only_the_structure_and_is_repaired_without_a_rebuild()
    {
        var desired = IngressSandboxTable.Build(TwoServices(), "10.255.0.2");
        using var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1));
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        var planned = await ListAsync(_ns);
        var table = await TableHandleAsync();

        // A foreign element and a rule by hand in the same window: the element is followed, the rule reads the structure.
        await Nft("add element ip mesh backends { tcp . 7777 . 0 : 10.0.0.9 . 80 }");
        await Nft("add rule ip mesh dispatch counter drop");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(1, nft.Reads); // no element dump
        Assert.Equal(1, nft.StructureReads);
        Assert.Equal(planned, await ListAsync(_ns));
        Assert.Equal(table, await TableHandleAsync()); // repaired in place, not rebuilt

        // The repair was Mesh's own commit: the next resync trusts the generation it made, and a foreign element alone
        // is followed as before.
        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        await Nft("add element ip mesh backends { tcp . 7777 . 0 : 10.0.0.9 . 80 }");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal((1, 1), (nft.Reads, nft.StructureReads));
        Assert.Equal(planned, await ListAsync(_ns));
    }

    [LabFact]
    public async Task A_Mesh_rule_deleted_by_hand_is_restored_and_a_chain_added_by_hand_is_deleted_without_an_element_dump()
    {
        var desired = IngressSandboxTable.Build(TwoServices(), "10.255.0.2");
        using var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1));
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        var planned = await ListAsync(_ns);
        var table = await TableHandleAsync();

        var rules = System.Text.RegularExpressions.Regex.Matches(await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "-a", "list", "chain", "ip", "mesh", "pick-rr-1"), @"# handle (\d+)\n");
        await Nft($"delete rule ip mesh pick-rr-1 handle {rules[^1].Groups[1].Value}");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal((1, 1), (nft.Reads, nft.StructureReads));
        Assert.Equal(planned, await ListAsync(_ns));

        // A chain of someone's in Mesh's table, jumped to from another of theirs and from a skeleton chain.
        await Nft("add chain ip mesh theirs; add rule ip mesh theirs counter; add chain ip mesh theirs2; add rule ip mesh theirs2 jump theirs; add rule ip mesh dispatch jump theirs2");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal((1, 2), (nft.Reads, nft.StructureReads));
        Assert.Equal(planned, await ListAsync(_ns));
        Assert.DoesNotContain("theirs", await Nft("list chains ip"), StringComparison.Ordinal);
        Assert.Equal(table, await TableHandleAsync());

        await Task.Delay(20);
        Assert.False(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal((1, 2), (nft.Reads, nft.StructureReads));
    }

    [LabFact]
    public async Task A_Mesh_map_deleted_by_hand_is_a_doubt_read_back_whole_and_repaired()
    {
        var desired = IngressSandboxTable.Build(TwoServices(), "10.255.0.2");
        using var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1));
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        var planned = await ListAsync(_ns);

        // Its elements go with it unannounced: only a whole read knows what is left. (Emptied first: rules refer to it.)
        await Nft("flush table ip mesh; delete map ip mesh published-ports");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(2, nft.Reads);
        Assert.Contains("delete set ip mesh published-ports", nft.LastDoubt, StringComparison.Ordinal);
        Assert.Equal(planned, await ListAsync(_ns));
    }

    private async Task<string> TableHandleAsync() =>
        System.Text.RegularExpressions.Regex.Match(await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "-a", "list", "table", "ip", "mesh"), @"table ip mesh \{ # handle (\d+)").Groups[1].Value is { Length: > 0 } handle
            ? handle
            : throw new InvalidOperationException("no handle in nft -a list table ip mesh");

    [LabFact]
    public async Task Notifications_lost_to_a_full_receive_buffer_are_a_doubt_read_back_and_repaired()
    {
        var desired = IngressSandboxTable.Build(TwoServices(), "10.255.0.2");
        using var nft = new NfTablesExecutor(TimeSpan.FromMilliseconds(1), changeLogBuffer: 1); // the kernel's minimum (~2 KiB)
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        var planned = await ListAsync(_ns);

        for (var i = 0; i < 20; i++)
        {
            await Nft($"add table ip theirs{i}");
        }

        await Nft("add element ip mesh backends { tcp . 7777 . 0 : 10.0.0.9 . 80 }");
        await Task.Delay(20);
        Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
        Assert.Equal(2, nft.Reads);
        Assert.Contains("overrun", nft.LastDoubt, StringComparison.Ordinal);
        Assert.Equal(planned, await ListAsync(_ns));
    }

    /// <summary>
    /// The oracle: Debian's nft, an independent writer and reader. The same desired table written by <c>nft -f</c> (from
    /// the rules' nft text) in one namespace and through netlink in another lists the same (handles aside), for a table
    /// with numgen and maglev (jhash) services, traffic=local, a service without tasks, and a task's VIP table; and a
    /// change (one task replaced) written as an element/chain diff lists as the new table written whole.
    /// </summary>
    [LabFact]
    public async Task Nft_lists_the_netlink_written_table_as_the_same_table_written_by_nft_from_its_text()
    {
        var other = _ns + "-oracle";
        await Shell.RunAsync("ip", "netns", "del", other);
        await Shell.CheckedAsync("ip", "netns", "add", other);
        try
        {
            var state = TwoServices();
            state = Mesh.Discovery.Store.StateTransitions.CreateService(state, new() { Name = "hash", Ports = [new PublishedPort(7070, 70), new PublishedPort(7071, 71) { Traffic = TrafficPolicy.Local }], LoadBalancing = LoadBalancing.Maglev }).State;
            state = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "hash", Node = "n1" }).State;
            state = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "hash", Node = "n2" }).State;
            state = Mesh.Discovery.Store.StateTransitions.CreateService(state, new() { Name = "empty", Ports = [new PublishedPort(6060, 60, TransportProtocol.Udp)] }).State;
            var nft = new NfTablesExecutor(TimeSpan.FromMinutes(1));
            var tables = new List<NftDesiredTable> { IngressSandboxTable.Build(state, "10.255.0.2", "n1") };
            var changed = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "web", Node = "n2" }).State;
            tables.Add(IngressSandboxTable.Build(changed, "10.255.0.2", "n1"));
            foreach (var desired in tables)
            {
                Assert.True(await nft.ConvergeAsync(Netns, desired, Family.Ip, IngressSandboxTable.Name, CancellationToken.None));
                await Shell.RunAsync("ip", "netns", "exec", other, "nft", "delete", "table", "ip", "mesh");
                await NftScriptAsync(other, Script(desired));
                Assert.Equal(await ListAsync(other), await ListAsync(_ns));
            }

            Assert.Contains("jhash", await ListAsync(_ns), StringComparison.Ordinal);

            // nft's text form too (`nft list`, what people and T5 read): nft 1.0.6 crashed printing a map declared by jhash.
            Assert.Contains("map maglev", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "-s", "list", "table", "ip", "mesh"), StringComparison.Ordinal);

            var vip = VipTable();
            Assert.True(await nft.ConvergeAsync(Netns, vip, Family.Ip, "mesh", CancellationToken.None));
            await Shell.RunAsync("ip", "netns", "exec", other, "nft", "delete", "table", "ip", "mesh");
            await NftScriptAsync(other, Script(vip));
            Assert.Equal(await ListAsync(other), await ListAsync(_ns));
            Assert.Contains("pick-rr-2", await ListAsync(_ns), StringComparison.Ordinal);

            Assert.True(await nft.ConvergeAsync(Netns, null, Family.Ip, "mesh", CancellationToken.None));
            Assert.DoesNotContain("mesh", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", "list", "tables"), StringComparison.Ordinal);
        }
        finally
        {
            await Shell.RunAsync("ip", "netns", "del", other);
        }
    }

    private static ClusterState TwoServices()
    {
        var state = Mesh.Discovery.Store.StateTransitions.RegisterNode(ClusterState.Empty, new() { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = Mesh.Discovery.Store.StateTransitions.RegisterNode(state, new() { Name = "n2", AdvertiseAddress = "198.18.0.12" }).State;
        state = Mesh.Discovery.Store.StateTransitions.CreateService(state, new() { Name = "web", Ports = [new PublishedPort(8080, 80)] }).State;
        state = Mesh.Discovery.Store.StateTransitions.CreateService(state, new() { Name = "api", Ports = [new PublishedPort(9090, 90)] }).State;
        state = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "web", Node = "n1" }).State;
        return Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "api", Node = "n1" }).State;
    }

    private static NftDesiredTable VipTable()
    {
        var state = Mesh.Discovery.Store.StateTransitions.RegisterNode(ClusterState.Empty, new() { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = Mesh.Discovery.Store.StateTransitions.CreateNetwork(state, new() { Name = "backend", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        state = Mesh.Discovery.Store.StateTransitions.CreateService(state, new() { Name = "db", Mode = ServiceMode.Vip, Networks = ["backend"] }).State;
        state = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "db", Node = "n1" }).State;
        state = Mesh.Discovery.Store.StateTransitions.AddTask(state, new() { Service = "db", Node = "n1" }).State;
        var table = TaskServiceTable.Build(state, state.Tasks[0]);
        Assert.True(TaskServiceTable.Needed(table));
        return table;
    }

    /// <summary>The table as an nft script from the rules' text, with the comments the planner adds.</summary>
    private static string Script(NftDesiredTable desired)
    {
        var t = $"ip {desired.Name}";
        var s = new System.Text.StringBuilder($"table {t} {{\n");
        foreach (var map in desired.Maps)
        {
            s.Append("  ").Append(map.Declaration).Append('\n');
        }

        foreach (var chain in desired.BaseChains)
        {
            s.Append(System.Globalization.CultureInfo.InvariantCulture, $"  chain {chain.Name} {{ type {chain.Base!.Type} hook {chain.Base.Hook.ToString().ToLowerInvariant()} priority {chain.Base.Priority}; policy accept; }}\n");
        }

        s.Append("}\n");
        foreach (var chain in desired.Chains)
        {
            s.Append(System.Globalization.CultureInfo.InvariantCulture, $"add chain {t} {chain.Name}\n");
        }

        foreach (var chain in desired.BaseChains.Concat(desired.Chains))
        {
            var tag = NftPlanner.ChainTag(chain);
            foreach (var rule in chain.Rules.Count == 0 ? ["counter"] : chain.Rules.Select(r => r.Text))
            {
                s.Append(System.Globalization.CultureInfo.InvariantCulture, $"add rule {t} {chain.Name} {rule} comment \"{tag}\"\n");
            }
        }

        foreach (var map in desired.Maps.Where(m => m.Elements.Count > 0))
        {
            s.Append(System.Globalization.CultureInfo.InvariantCulture, $"add element {t} {map.Name} {{ {string.Join(", ", map.Elements.Select(e => e.Text))} }}\n");
        }

        s.Append(System.Globalization.CultureInfo.InvariantCulture, $"add chain {t} state\nadd rule {t} state counter comment \"{NftPlanner.SkeletonTag(desired)}\"\n");
        return s.ToString();
    }

    private static Task<string> NftScriptAsync(string ns, string script) =>
        new ProcessCommandRunner().RunCheckedInAsync(NetworkNamespacePath.Named(ns), "nft", ["-f", "-"], script, CancellationToken.None);

    /// <summary><c>nft -j list table ip mesh</c> without handles, each map's elements in one order, objects in one order.</summary>
    private static async Task<string> ListAsync(string ns)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(await Shell.CheckedAsync("ip", "netns", "exec", ns, "nft", "-j", "list", "table", "ip", "mesh"))!;
        var items = new List<(int Kind, string Name, string Json)>();
        foreach (var item in json["nftables"]!.AsArray())
        {
            var obj = item!.AsObject();
            if (obj.ContainsKey("metainfo"))
            {
                continue;
            }

            var inner = obj.First().Value!.AsObject();
            inner.Remove("handle");
            if (inner["elem"] is System.Text.Json.Nodes.JsonArray elem)
            {
                var sorted = elem.Select(e => e!.ToJsonString()).Order(StringComparer.Ordinal).ToList();
                inner["elem"] = new System.Text.Json.Nodes.JsonArray(sorted.Select(e => System.Text.Json.Nodes.JsonNode.Parse(e)).ToArray());
            }

            var kind = obj.First().Key;
            items.Add((kind switch { "table" => 0, "map" or "set" => 1, "chain" => 2, _ => 3 }, (kind == "rule" ? inner["chain"] : inner["name"])?.GetValue<string>() ?? "", obj.ToJsonString()));
        }

        // Objects by kind and name (a chain added by a later transaction lists after older ones); a chain's rules keep their order.
        return string.Join("\n", items.OrderBy(i => i.Kind).ThenBy(i => i.Name, StringComparer.Ordinal).Select(i => i.Json));
    }

    [LabFact]
    public async Task Iptables_nft_too_renews_its_trust_by_the_generation_and_lists_again_when_someone_commits()
    {
        var desired = new Mesh.Ingress.Kernel.Iptables.IptablesRuleset(
            [new("filter", "MESH-TEST", ["-p tcp -m tcp --dport 80 -j ACCEPT"])],
            [new("filter", "INPUT", "-j MESH-TEST")]);
        var ipt = new Mesh.Ingress.Kernel.Iptables.IptablesExecutor(_runner, Mesh.Ingress.Kernel.Iptables.IptablesFlavour.Nft, TimeSpan.FromMilliseconds(1), _generation);
        Assert.True(await ipt.ApplyAsync(Netns, desired, ["filter"], CancellationToken.None));

        await Task.Delay(20);
        _runner.Saves = 0;
        Assert.False(await ipt.ApplyAsync(Netns, desired, ["filter"], CancellationToken.None));
        Assert.Equal(0, _runner.Saves);

        // Someone changes Mesh's chain: the generation moved, so it is read and repaired.
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft", "-F", "MESH-TEST");
        await Task.Delay(20);
        Assert.True(await ipt.ApplyAsync(Netns, desired, ["filter"], CancellationToken.None));
        Assert.Equal(1, _runner.Saves);
        Assert.Contains("-A MESH-TEST -p tcp -m tcp --dport 80 -j ACCEPT", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft-save", "-t", "filter"), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task Iptables_nft_does_not_vouch_for_a_change_planned_on_stale_knowledge_either()
    {
        Mesh.Ingress.Kernel.Iptables.IptablesRuleset Rules(params string[] ports) => new(
            [new("filter", "MESH-A", ["-p tcp -m tcp --dport 80 -j ACCEPT"]), new("filter", "MESH-B", [.. ports.Select(p => $"-p tcp -m tcp --dport {p} -j ACCEPT")])],
            [new("filter", "INPUT", "-j MESH-A"), new("filter", "INPUT", "-j MESH-B")]);
        var ipt = new Mesh.Ingress.Kernel.Iptables.IptablesExecutor(_runner, Mesh.Ingress.Kernel.Iptables.IptablesFlavour.Nft, TimeSpan.FromMilliseconds(500), _generation);
        Assert.True(await ipt.ApplyAsync(Netns, Rules("81"), ["filter"], CancellationToken.None));

        // Within the trust someone empties MESH-A; then Mesh changes MESH-B only.
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft", "-F", "MESH-A");
        Assert.True(await ipt.ApplyAsync(Netns, Rules("81", "82"), ["filter"], CancellationToken.None));

        await Task.Delay(600);
        _runner.Saves = 0;
        Assert.True(await ipt.ApplyAsync(Netns, Rules("81", "82"), ["filter"], CancellationToken.None));
        Assert.Equal(1, _runner.Saves);
        Assert.Contains("-A MESH-A -p tcp -m tcp --dport 80 -j ACCEPT", await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft-save", "-t", "filter"), StringComparison.Ordinal);
    }

    private Task<string> Nft(string script) => Shell.CheckedAsync("ip", "netns", "exec", _ns, "nft", script);

    private sealed class CountingRunner : ICommandRunner
    {
        private readonly ProcessCommandRunner _inner = new();

        public int Listings { get; set; }

        public int Saves { get; set; }

        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
        {
            if (arguments.Contains("nft") && arguments.Contains("list"))
            {
                Listings++;
            }

            if (arguments.Contains("iptables-nft-save"))
            {
                Saves++;
            }

            return _inner.RunAsync(file, arguments, standardInput, cancellationToken);
        }
    }
}
