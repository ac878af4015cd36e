using System.Diagnostics;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// The nf_tables library against this machine's kernel, in throw-away network namespaces (root needed, as for the
/// rest of the kernel tests), with Debian's <c>nft</c> as the independent reader: what the library commits must list
/// exactly as what nft itself writes from Mesh's script.
/// </summary>
public sealed class NfTablesKernelTests : IDisposable
{
    private const Family Ip = Family.Ip;
    private readonly List<string> _namespaces = [];

    [Fact]
    public void Sandbox_table_through_netlink_lists_as_the_one_nft_writes()
    {
        var services = NfTablesSandboxLayout.TwoServices;
        var viaNetlink = NewNamespace();
        using (var nft = NfTablesHandle.Open(NetnsPath(viaNetlink)))
        {
            nft.Commit(NfTablesSandboxLayout.Batch(services));
        }
        var viaNft = NewNamespace();
        Run(viaNft, NfTablesSandboxLayout.Script(services), "nft", "-f", "-");

        var listed = Run(viaNetlink, null, "nft", "list", "table", "ip", "mesh");
        Assert.Contains("elements = { 0x00000100 : goto svc-web, 0x00000101 : goto svc-loc }", listed, StringComparison.Ordinal);
        Assert.Contains("dnat ip to numgen inc mod 2 map { 0 : 10.255.0.5 . 80, 1 : 10.255.0.6 . 80 } comment \"h=0123456789abcdef\"", listed, StringComparison.Ordinal);
        Assert.Equal(Run(viaNft, null, "nft", "list", "table", "ip", "mesh"), listed);
        // The JSON listing carries handles too: the same objects were created in the same order.
        Assert.Equal(Run(viaNft, null, "nft", "-j", "list", "table", "ip", "mesh"), Run(viaNetlink, null, "nft", "-j", "list", "table", "ip", "mesh"));
    }

    [Fact]
    public void Dumps_read_back_what_was_committed()
    {
        var ns = NewNamespace();
        using var nft = NfTablesHandle.Open(NetnsPath(ns));
        uint before = nft.GetGeneration();
        nft.Commit(NfTablesSandboxLayout.Batch(NfTablesSandboxLayout.TwoServices));
        Assert.Equal(before + 1, nft.GetGeneration()); // one transaction, one generation

        Assert.Equal(new Table(Ip, "mesh"), Assert.Single(nft.GetTables(Ip)) with { Handle = 0, Use = 0 });
        var chains = nft.GetChains(Ip, "mesh");
        Assert.Equal(["mark-published", "dispatch", "source-nat", "svc-web", "svc-loc", "state"], chains.Select(c => c.Name));
        Assert.Equal(new BaseChain("filter", Hook.Prerouting, -150), chains[0].Base);
        Assert.Equal(new BaseChain("nat", Hook.Postrouting, 100), chains[2].Base);
        Assert.Null(chains[3].Base);

        // Rules come back with their expressions decoded; anonymous sets by the name the kernel gave them.
        var rules = nft.GetRules(Ip, "mesh");
        Assert.Equal(["mark-published", "dispatch", "source-nat", "source-nat", "svc-web", "svc-loc", "state"], rules.Select(r => r.Chain));
        Assert.All(rules, r => Assert.NotEqual(0UL, r.Handle));
        var web = rules.Single(r => r.Chain == "svc-web");
        Assert.Equal("h=0123456789abcdef", web.Comment);
        Assert.Equal(
            [new Meta(MetaKey.L4Proto), new Cmp(CmpOp.Eq, NftData.U8(6)), new Payload(PayloadBase.Transport, 2, 2), new Cmp(CmpOp.Eq, NftData.Be16(8080)), new Numgen(2)],
            web.Expressions.Take(5));
        var anonymous = Assert.IsType<Lookup>(web.Expressions[5]);
        Assert.Matches("^__map[0-9]+$", anonymous.Set);
        Assert.Equal(new Nat(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R32(1)), web.Expressions[6]);
        var snat = rules.Where(r => r.Chain == "source-nat").ToList();
        Assert.Equal(new VerdictExpression(Verdict.Return), snat[0].Expressions[^1]);
        Assert.Equal(new Nat(NatType.Snat, Ip), snat[1].Expressions[^1]);
        Assert.IsType<Counter>(rules.Single(r => r.Chain == "state").Expressions.Single());

        // A rule read back and written again is the same rule (its anonymous set by the kernel's name).
        var again = NewNamespace();
        using (var copy = NfTablesHandle.Open(NetnsPath(again)))
        {
            var b = new NfTablesBatch().AddTable(new Table(Ip, "mesh"));
            foreach (var c in chains) b.AddChain(c);
            foreach (var s in nft.GetSets(Ip, "mesh"))
            {
                b.AddSet(s);
                var elements = nft.GetElements(Ip, "mesh", s.Name);
                if (elements.Count > 0) b.AddElements(Ip, "mesh", s.Name, elements);
            }
            foreach (var r in rules) b.AddRule(r);
            copy.Commit(b);
            var copied = copy.GetRules(Ip, "mesh");
            Assert.Equal(rules.Count, copied.Count);
            Assert.All(rules.Zip(copied), p => Assert.True(p.First.SameAs(p.Second), $"{p.First}\n!=\n{p.Second}"));
        }
        Assert.Equal(Run(ns, null, "nft", "list", "table", "ip", "mesh"), Run(again, null, "nft", "list", "table", "ip", "mesh"));

        var sets = nft.GetSets(Ip, "mesh");
        var ports = sets.Single(s => s.Name == "published-ports");
        Assert.Equal(SetDataType.Concat(SetDataType.InetProto, SetDataType.InetService), ports.KeyType);
        Assert.Equal(SetDataType.Mark, ports.DataType);
        Assert.Equal(SetFlags.Map, ports.Flags);
        Assert.Equal(SetDataType.Verdict, sets.Single(s => s.Name == "service-chains").DataType);
        Assert.Equal(
            [new SetElement(NftData.U32(0x100), Verdict: Verdict.Goto("svc-web")), new SetElement(NftData.U32(0x101), Verdict: Verdict.Goto("svc-loc"))],
            nft.GetElements(Ip, "mesh", "service-chains").OrderBy(e => e.Key.ToString(), StringComparer.Ordinal));
        Assert.Contains(new SetElement(NftData.Concat(NftData.U8(6), NftData.Be16(8080)), NftData.U32(0x100)), nft.GetElements(Ip, "mesh", "published-ports"));
    }

    [Fact]
    public void Task_table_expressions_read_back_as_written()
    {
        // vmap by address, ct status, jhash over a concatenation, masquerade, numgen → dnat map, jump.
        var ns = NewNamespace();
        using var nft = NfTablesHandle.Open(NetnsPath(ns));
        nft.Commit(NfTablesGoldenBytesTests.TaskTable());
        var rules = nft.GetRules(Ip, "t2");
        Assert.Equal(["output", "output", "output", "post", "vip_x", "vip_x"], rules.Select(r => r.Chain));
        Assert.Equal([new Payload(PayloadBase.Network, 16, 4), new Lookup("vips", Registers.R1, Registers.Verdict)], rules[0].Expressions);
        Assert.Equal([new Ct(CtKey.Status), new Bitwise(4, NftData.U32(0x20), NftData.U32(0)), new Cmp(CmpOp.Neq, NftData.U32(0)), new VerdictExpression(Verdict.Accept)], rules[1].Expressions);
        Assert.Equal(new JHash(Registers.R2, 8, 4, 0xdeadbeef, Offset: 1), rules[2].Expressions[4]);
        Assert.Equal(new Payload(PayloadBase.Transport, 0, 2, Registers.R32(5)), rules[2].Expressions[3]);
        Assert.Equal([new Masquerade()], rules[3].Expressions);
        Assert.Equal(new Nat(NatType.Dnat, Ip), rules[4].Expressions[2]);
        Assert.Equal([new VerdictExpression(Verdict.Jump("vip_y"))], rules[5].Expressions);
        Assert.Equal([new SetElement(NftData.Ipv4("10.0.0.2"), Verdict: Verdict.Goto("vip_x"))], nft.GetElements(Ip, "t2", "vips"));
        var listed = Run(ns, null, "nft", "list", "table", "ip", "t2");
        Assert.Contains("meta mark set jhash ip saddr . tcp sport mod 4 seed 0xdeadbeef offset 1", listed, StringComparison.Ordinal);
        Assert.Contains("dnat to numgen inc mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 }", listed, StringComparison.Ordinal);
        Assert.Contains("elements = { 10.0.0.2 : goto vip_x }", listed, StringComparison.Ordinal);
    }

    [Fact]
    public void One_map_element_added_and_deleted()
    {
        var ns = NewNamespace();
        using var nft = NfTablesHandle.Open(NetnsPath(ns));
        nft.Commit(NfTablesSandboxLayout.Batch(NfTablesSandboxLayout.TwoServices));
        var element = new SetElement(NftData.Concat(NftData.U8(6), NftData.Be16(9090)), NftData.U32(0x100));

        nft.Commit(new NfTablesBatch().AddElements(Ip, "mesh", "published-ports", [element]));
        Assert.Contains("tcp . 9090 : 0x00000100", Run(ns, null, "nft", "list", "map", "ip", "mesh", "published-ports"), StringComparison.Ordinal);
        Assert.Contains(element, nft.GetElements(Ip, "mesh", "published-ports"));

        nft.Commit(new NfTablesBatch().DeleteElements(Ip, "mesh", "published-ports", [element]));
        Assert.DoesNotContain("9090", Run(ns, null, "nft", "list", "map", "ip", "mesh", "published-ports"), StringComparison.Ordinal);
        Assert.Equal(2, nft.GetElements(Ip, "mesh", "published-ports").Count);

        // Deleting it again fails, naming the element and the errno.
        var e = Assert.Throws<NfTablesTransactionException>(() => nft.Commit(new NfTablesBatch().DeleteElements(Ip, "mesh", "published-ports", [element])));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Contains("delete element ip mesh published-ports { 0x060000002382", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failing_change_names_itself_and_the_transaction_leaves_the_ruleset_unchanged()
    {
        var ns = NewNamespace();
        using var nft = NfTablesHandle.Open(NetnsPath(ns));
        nft.Commit(NfTablesSandboxLayout.Batch(NfTablesSandboxLayout.TwoServices));
        var listed = Run(ns, null, "nft", "list", "ruleset");
        uint generation = nft.GetGeneration();

        var b = new NfTablesBatch();
        NfTablesSandboxLayout.AddService(b, new SandboxService("new", false, 7070, 0x102, [("10.255.0.9", 80)]));
        b.AddRule(new Rule(Ip, "mesh", "svc-new", [new VerdictExpression(Verdict.Jump("missing-chain"))], "bad"));
        b.AddElements(Ip, "mesh", "service-chains", [new SetElement(NftData.U32(0x102), Verdict: Verdict.Goto("svc-new"))]);
        var e = Assert.Throws<NfTablesTransactionException>(() => nft.Commit(b));

        var failure = Assert.Single(e.Failures);
        Assert.Equal(5, failure.Index); // BEGIN, chain, map, elements, dnat rule, then this one
        Assert.Equal(Errno.ENOENT, failure.Error.Errno);
        Assert.StartsWith($"add rule ip mesh svc-new: [jump missing-chain] comment \"bad\" in {NetnsPath(ns)}", failure.Operation, StringComparison.Ordinal);
        Assert.Contains("ENOENT", e.Message, StringComparison.Ordinal);
        Assert.Contains("nothing applied", e.Message, StringComparison.Ordinal);
        Assert.Equal(generation, nft.GetGeneration());
        Assert.Equal(listed, Run(ns, null, "nft", "list", "ruleset"));
    }

    [Fact]
    public void Ten_thousand_changes_go_in_one_transaction_with_every_answer()
    {
        var ns = NewNamespace();
        using var nft = NfTablesHandle.Open(NetnsPath(ns));
        var batch = NfTablesSandboxLayout.Batch(NfTablesSandboxLayout.Many(2500, 2)); // 4 changes per service
        Assert.True(batch.Count > 10_000);
        nft.Commit(batch);
        Assert.Equal(2500 + 4, nft.GetChains(Ip, "mesh").Count);
        Assert.Equal(2500, nft.GetElements(Ip, "mesh", "service-chains").Count);
    }

    private string NewNamespace()
    {
        var name = $"nftt-{Environment.ProcessId}-{_namespaces.Count}-{Random.Shared.Next(100000)}";
        Run(null, null, "ip", "netns", "add", name);
        _namespaces.Add(name);
        return name;
    }

    private static string NetnsPath(string name) => "/run/netns/" + name;

    private static string Run(string? netns, string? stdin, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? file : "ip") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        if (netns is not null)
        {
            foreach (var a in new[] { "netns", "exec", netns, file }) psi.ArgumentList.Add(a);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}{(netns is null ? "" : " in " + netns)}: exit {p.ExitCode}: {stderr.Result}");
        return stdout;
    }

    public void Dispose()
    {
        foreach (var ns in _namespaces)
        {
            try { Run(null, null, "ip", "netns", "del", ns); }
            catch (Xunit.Sdk.XunitException) { } // best effort; the next assertion failure is the one that matters
        }
    }
}
