using Mesh.Ingress.Dataplane;
using Mesh.LoadTests.Lab;
using Xunit;

namespace Mesh.LoadTests.Tests;

public class FirstPacketTests
{
    [Fact]
    public void The_target_is_the_last_service_its_tasks_on_the_ingress_subnet_and_its_elements_last_in_every_map()
    {
        var (state, target) = FirstPacketTarget.Make(100, 10);
        Assert.Equal("s00099", target.Service);
        Assert.Equal((20099, 80), (target.PublishedPort, target.TargetPort));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $"10.255.1.{i}"), target.Tasks);
        Assert.Equal(1000, state.Tasks.Count);
        Assert.Equal(1000, state.Tasks.Select(t => t.Addresses["ingress"]).Distinct().Count());
        Assert.All(state.Tasks.Where(t => t.Service != target.Service), t => Assert.StartsWith("10.16.", t.Addresses["ingress"], StringComparison.Ordinal));

        var table = IngressSandboxTable.Build(state, ScaleScenario.SandboxIngressAddress);
        Assert.EndsWith(": 0x00000163", table.Maps.Single(m => m.Name == "published-ports").Elements[^1].Text, StringComparison.Ordinal); // mark 0x100 + 99
        Assert.StartsWith("0x00000163 . tcp . 20099 : goto pick-rr-10", table.Maps.Single(m => m.Name == IngressSandboxTable.PortChainsMap).Elements[^1].Text, StringComparison.Ordinal);
        var backends = table.Maps.Single(m => m.Name == IngressSandboxTable.BackendsMap).Elements;
        var last = backends.TakeLast(10).Select(e => e.Text).ToList(); // slots in the tasks' name order (s00099.1, s00099.10, s00099.2, ...)
        Assert.Equal(Enumerable.Range(0, 10).Select(slot => $"tcp . 20099 . {slot} : "), last.Select(e => e[..e.IndexOf(": ", StringComparison.Ordinal)] + ": "));
        Assert.Equal(target.Tasks.Order(StringComparer.Ordinal), last.Select(e => e.Split(" : ")[1].Split(' ')[0]).Order(StringComparer.Ordinal));

        // The naive layout: the target's jump is the last of the walk, its DNATs to the same tasks.
        var naive = ScaleScenario.NaiveIptables(state, 10).Split('\n');
        Assert.Equal("-A PREROUTING -i eth1 -p tcp -m tcp --dport 20099 -j SVC-s00099", naive.Last(l => l.StartsWith("-A PREROUTING", StringComparison.Ordinal)));
        Assert.Equal(10, naive.Count(l => l.StartsWith("-A SVC-s00099 ", StringComparison.Ordinal) && l.Contains("--to-destination 10.255.1.", StringComparison.Ordinal)));
    }

    private const string WrkOutput = """
        Running 1s test @ http://172.18.1.2:20009/
          1 threads and 16 connections
        Requests/sec:   4104.00
        first-packet-check wrong 0
        first-packet-check task 10.255.1.1 5
        first-packet-check task 10.255.1.2 4
        first-packet-check wrong 1
        first-packet-check task 10.255.1.1 2
        """;

    [Fact]
    public void The_check_sums_the_threads_lines_and_is_missing_when_wrk_wrote_none()
    {
        var check = FirstPacketCheck.Parse(WrkOutput)!;
        Assert.Equal(1, check.Wrong);
        Assert.Equal(new Dictionary<string, long> { ["10.255.1.1"] = 7, ["10.255.1.2"] = 4 }, check.ByTask);
        Assert.Equal(11, check.Answered);
        Assert.Null(FirstPacketCheck.Parse("unable to connect to 172.18.1.2:20009 Connection timed out\n"));
    }

    [Fact]
    public void The_check_fails_a_wrong_body_a_stranger_a_task_never_hit_and_unequal_round_robin_shares()
    {
        string[] tasks = ["10.255.1.1", "10.255.1.2"];
        FirstPacketCheck Of(long a, long b, long wrong = 0, string? stranger = null)
        {
            var byTask = new Dictionary<string, long> { [tasks[0]] = a, [tasks[1]] = b };
            if (stranger is not null) byTask[stranger] = 1;
            return new FirstPacketCheck(byTask, wrong);
        }

        Assert.Null(Of(100, 117).Problem(tasks, tolerance: 17));
        Assert.Null(Of(100, 300).Problem(tasks, tolerance: null)); // random (naive iptables): only every task hit
        Assert.Contains("differ by more than 17", Of(100, 118).Problem(tasks, tolerance: 17), StringComparison.Ordinal);
        Assert.Contains("never hit: 10.255.1.2", Of(100, 0).Problem(tasks, tolerance: null), StringComparison.Ordinal);
        Assert.Contains("not the target's tasks: 10.16.0.1", Of(100, 100, stranger: "10.16.0.1").Problem(tasks, tolerance: 17), StringComparison.Ordinal);
        Assert.Contains("3 responses were not 200", Of(100, 100, wrong: 3).Problem(tasks, tolerance: 17), StringComparison.Ordinal);
    }

    [Fact]
    public void The_ratios_pair_each_size_with_the_smallest_of_the_same_layout_and_round()
    {
        FirstPacketScenario.Round R(FirstPacketLayout layout, int services, int number, double rps) =>
            new($"{layout}-{services}", services, layout, number, rps, 1, 0, 0, 0, 0, 0, 1, 1, 0.5, null);
        var rounds = new[]
        {
            R(FirstPacketLayout.Mesh, 10, 1, 1000), R(FirstPacketLayout.Mesh, 10000, 1, 990), R(FirstPacketLayout.NaiveIptables, 10, 1, 2000), R(FirstPacketLayout.NaiveIptables, 10000, 1, 1000),
            R(FirstPacketLayout.Mesh, 10, 2, 500), R(FirstPacketLayout.Mesh, 10000, 2, 600), R(FirstPacketLayout.NaiveIptables, 10, 2, 1000), R(FirstPacketLayout.NaiveIptables, 10000, 2, 700),
        };
        Assert.Equal([0.99, 1.2], FirstPacketScenario.PairedRatios(rounds, FirstPacketLayout.Mesh, 10000));
        Assert.Equal([0.5, 0.7], FirstPacketScenario.PairedRatios(rounds, FirstPacketLayout.NaiveIptables, 10000));
        Assert.Equal(2.5, FirstPacketScenario.Median([3, 1, 2, 4]));
        Assert.Equal(2, FirstPacketScenario.Median([3, 1, 2]));
    }

    [Fact]
    public void The_median_interval_is_the_sign_tests_order_statistics()
    {
        // n = 20: P(B(20, ½) ≤ 5) = 0.0207 ≤ 0.025 < P(B ≤ 6) = 0.0577, so the 6th smallest and the 6th largest.
        var twenty = Enumerable.Range(1, 20).Select(i => (double)i).Reverse().ToList();
        Assert.Equal((6d, 15d), FirstPacketScenario.MedianInterval(twenty));
        // n = 6: P(B = 0) = 1/64 ≤ 0.025 < P(B ≤ 1) = 7/64: the extremes; n = 5: 1/32 > 0.025, no 95 % interval.
        Assert.Equal((1d, 6d), FirstPacketScenario.MedianInterval([3, 1, 2, 6, 5, 4]));
        Assert.Null(FirstPacketScenario.MedianInterval([1, 2, 3, 4, 5]));
        Assert.Null(FirstPacketScenario.MedianInterval([]));
        // A phase change's outliers (the 2026-12-02 run's 0.74, 0.79, 0.83) do not move it the way they move a mean.
        double[] rounds = [0.79, 1.02, 1.04, 0.98, 1.03, 0.83, 0.99, 0.97, 0.99, 0.99, 1.01, 0.98, 0.99, 1.03, 0.74, 1.01, 0.99, 0.99, 1.00, 1.02];
        Assert.Equal((0.98, 1.01), FirstPacketScenario.MedianInterval(rounds));
    }
}
