using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// One iptables-save per namespace, whatever tables its callers ask for: a task namespace on the ipvs dataplane is
/// asked for filter + nat and for mangle, three processes per resync before (seconds each under qemu).
/// </summary>
public sealed class IptablesExecutorTests
{
    private static readonly NetworkNamespacePath Task1 = new("/run/netns/t1");

    private const string Save = """
        *mangle
        :PREROUTING ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :MESH-VIP-OUTPUT - [0:0]
        -A OUTPUT -j MESH-VIP-OUTPUT
        -A MESH-VIP-OUTPUT -d 10.0.1.250/32 -j MARK --set-xmark 0x100/0xffffffff
        COMMIT
        *nat
        :OUTPUT ACCEPT [0:0]
        :MESH-DNS-OUTPUT - [0:0]
        -A OUTPUT -d 127.0.0.11/32 -j MESH-DNS-OUTPUT
        -A MESH-DNS-OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40001
        COMMIT
        *filter
        :INPUT ACCEPT [0:0]
        COMMIT

        """;

    private static readonly IptablesRuleset Marks = new(
        [new("mangle", "MESH-VIP-OUTPUT", ["-d 10.0.1.250/32 -j MARK --set-xmark 0x100/0xffffffff", "-d 10.0.1.251/32 -j MARK --set-xmark 0x101/0xffffffff"])],
        [new("mangle", "OUTPUT", "-j MESH-VIP-OUTPUT")]);

    private static readonly IptablesRuleset Dns = new(
        [new("nat", "MESH-DNS-OUTPUT", ["-d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40001"])],
        [new("nat", "OUTPUT", "-d 127.0.0.11/32 -j MESH-DNS-OUTPUT")]);

    [Fact]
    public async Task Two_callers_asking_for_different_tables_of_one_namespace_cost_one_save_without_t()
    {
        var runner = new ScriptedRunner(Save);
        var executor = new IptablesExecutor(runner, IptablesFlavour.Legacy, TimeSpan.FromMinutes(1));

        var filterNat = await executor.ReadAsync(Task1, ["filter", "nat"], CancellationToken.None);
        var mangle = await executor.ReadAsync(Task1, ["mangle"], CancellationToken.None);

        var save = Assert.Single(runner.Commands, c => c.Contains("iptables-legacy-save", StringComparison.Ordinal));
        Assert.DoesNotContain(" -t", save, StringComparison.Ordinal);
        Assert.Equal([("nat", "MESH-DNS-OUTPUT")], filterNat.OwnedChains.Keys);
        Assert.Equal([("mangle", "MESH-VIP-OUTPUT")], mangle.OwnedChains.Keys);
        Assert.All(filterNat.Jumps, j => Assert.Equal("nat", j.Table));
    }

    [Fact]
    public async Task A_write_to_one_table_plans_only_that_table_and_keeps_the_others_known()
    {
        var runner = new ScriptedRunner(Save);
        var executor = new IptablesExecutor(runner, IptablesFlavour.Legacy, TimeSpan.FromMinutes(1));

        // The nat chain is already as wanted; a new mark in mangle is written without a word about nat.
        Assert.False(await executor.ApplyAsync(Task1, Dns, ["filter", "nat"], CancellationToken.None));
        Assert.True(await executor.ApplyAsync(Task1, Marks, ["mangle"], CancellationToken.None));

        var restore = Assert.Single(runner.Inputs);
        Assert.Contains("*mangle", restore, StringComparison.Ordinal);
        Assert.Contains("0x101", restore, StringComparison.Ordinal);
        Assert.DoesNotContain("*nat", restore, StringComparison.Ordinal);

        // Within the trust both parts are what was read or written, with no further save.
        Assert.False(await executor.ApplyAsync(Task1, Marks, ["mangle"], CancellationToken.None));
        Assert.False(await executor.ApplyAsync(Task1, Dns, ["filter", "nat"], CancellationToken.None));
        Assert.Single(runner.Commands, c => c.Contains("-save", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_write_planned_from_a_save_no_longer_known_makes_the_next_read_save_again()
    {
        var runner = new ScriptedRunner(Save);
        var executor = new IptablesExecutor(runner, IptablesFlavour.Legacy, TimeSpan.FromMinutes(1));
        var stale = await executor.ReadAsync(Task1, ["mangle"], CancellationToken.None);
        executor.Forget(Task1);
        await executor.ReadAsync(Task1, ["filter", "nat"], CancellationToken.None);

        Assert.True(await executor.ApplyAsync(Task1, Marks, stale, ["mangle"], CancellationToken.None));
        await executor.ReadAsync(Task1, ["nat"], CancellationToken.None);

        Assert.Equal(3, runner.Commands.Count(c => c.Contains("-save", StringComparison.Ordinal)));
    }

    /// <summary>Answers every iptables-save with one fixed text, accepts every restore, and records both.</summary>
    private sealed class ScriptedRunner(string save) : ICommandRunner
    {
        public List<string> Commands { get; } = [];

        public List<string> Inputs { get; } = [];

        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
        {
            var command = CommandRunnerExtensions.Describe(file, arguments);
            Commands.Add(command);
            if (standardInput is not null)
            {
                Inputs.Add(standardInput);
            }

            return Task.FromResult(new CommandResult(0, command.Contains("-save", StringComparison.Ordinal) ? save : "", ""));
        }
    }
}
