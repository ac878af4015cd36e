using System.Globalization;
using System.Net;
using Mesh.Ingress.Balancing;
using Mesh.Ingress.Proxy;

namespace Mesh.Ingress.Tests.Balancing;

/// <summary>The Maglev table (Eisenbud et al. 2016): equal shares within one bucket, and a backend leaving moves only its own clients.</summary>
public sealed class MaglevTableTests
{
    private static string[] Backends(int n) => Enumerable.Range(2, n).Select(i => string.Create(CultureInfo.InvariantCulture, $"10.255.0.{i}")).ToArray();

    /// <summary>1,000 client addresses as the lab test uses them: 198.18.4.0 - 198.18.7.231.</summary>
    private static IPAddress[] Clients() => Enumerable.Range(0, 1000).Select(i => new IPAddress([198, 18, (byte)(4 + (i / 256)), (byte)(i % 256)])).ToArray();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(7)]
    [InlineData(25)]
    [InlineData(26)]
    [InlineData(100)]
    [InlineData(300)]
    public void Every_backend_gets_its_share_within_one_bucket_and_every_bucket_is_filled(int n)
    {
        var table = MaglevTable.Build(Backends(n));
        Assert.Equal(MaglevTable.SizeFor(n), table.Size);
        Assert.All(table.Entries, e => Assert.InRange(e, 0, n - 1));
        var shares = table.Shares();
        Assert.True(shares.Max() - shares.Min() <= 1, $"shares {shares.Min()}-{shares.Max()} of {table.Size} for {n} backends");
        Assert.True(shares.Min() >= Math.Min(MaglevTable.BucketsPerBackend, table.Size / n), $"{shares.Min()} buckets for one of {n} backends");
    }

    [Fact]
    public void The_size_grows_with_the_backends_and_stays_a_prime_from_the_list()
    {
        Assert.Equal(251, MaglevTable.SizeFor(4));
        Assert.Equal(251, MaglevTable.SizeFor(25));
        Assert.Equal(1021, MaglevTable.SizeFor(26));
        Assert.Equal(4093, MaglevTable.SizeFor(103));
        Assert.Equal(4093, MaglevTable.SizeFor(5000));
        Assert.Throws<ArgumentOutOfRangeException>(() => MaglevTable.Build(Backends(3), 250));
    }

    [Fact]
    public void The_table_depends_only_on_the_set_of_backends_not_their_order()
    {
        var backends = Backends(5);
        Assert.Equal(MaglevTable.Build(backends).Entries, MaglevTable.Build(backends.Reverse().Concat(backends)).Entries);
        Assert.Equal(MaglevTable.Build(backends).Backends, MaglevTable.Build(backends.Reverse()).Backends);
    }

    [Fact]
    public void Removing_one_of_four_backends_keeps_the_clients_of_the_other_three()
    {
        var four = MaglevTable.Build(Backends(4));
        var three = MaglevTable.Build(Backends(4).Take(3));
        var clients = Clients();
        var before = clients.Select(c => four.Lookup(c)!).ToArray();
        var after = clients.Select(c => three.Lookup(c)!).ToArray();
        var removed = Backends(4)[3];

        // Each backend's clients near 1/4 of the 1,000 (the hash spreads addresses one apart).
        Assert.All(before.GroupBy(b => b), g => Assert.InRange(g.Count(), 200, 300));
        var kept = before.Zip(after).Count(p => p.First == p.Second);
        var keptOfOthers = before.Zip(after).Where(p => p.First != removed).Count(p => p.First == p.Second);
        var others = before.Count(b => b != removed);
        Assert.True(kept >= 700, $"{kept} of 1000 kept their backend");
        Assert.True(keptOfOthers >= others * 0.95, $"{keptOfOthers} of the {others} clients of the remaining backends kept theirs");
        Assert.DoesNotContain(removed, after);
    }

    [Fact]
    public void The_relays_hashed_choice_keeps_a_client_on_its_backend_and_round_robin_does_not()
    {
        var endpoints = Backends(4).Select(a => new IPEndPoint(IPAddress.Parse(a), 80)).ToArray();
        var hashed = new BackendRotation(endpoints, hashed: true);
        var client = IPAddress.Parse("198.18.4.7");
        var first = hashed.Next(client);
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(first, hashed.Next(client)));
        Assert.Equal(4, Clients().Select(c => hashed.Next(c)).Distinct().Count());

        var rr = new BackendRotation(endpoints);
        Assert.Equal(4, Enumerable.Range(0, 4).Select(_ => rr.Next(client)).Distinct().Count());

        // A backend leaving: the clients of the others stay where they were.
        var others = Clients().Where(c => !Equals(hashed.Next(c), endpoints[3])).ToArray();
        var before = others.Select(c => hashed.Next(c)).ToArray();
        hashed.Replace(endpoints[..3], hashed: true);
        Assert.True(others.Select(c => hashed.Next(c)).Zip(before).Count(p => Equals(p.First, p.Second)) >= others.Length * 0.95);
    }
}

/// <summary>Mesh's copy of the kernel's <c>jhash ip saddr mod 251 seed 0x4d455348</c>, against what the kernel computed (an nft set filled by the rule, 6.18).</summary>
public sealed class NftJhashTests
{
    [Theory]
    [InlineData("10.9.0.1", 0x2b)]
    [InlineData("10.9.0.2", 0x5f)]
    [InlineData("10.9.0.3", 0xa0)]
    [InlineData("10.9.0.4", 0xc6)]
    [InlineData("10.9.0.5", 0xf9)]
    [InlineData("10.9.0.6", 0xaa)]
    [InlineData("10.9.0.7", 0x4c)]
    [InlineData("10.9.0.8", 0xee)]
    [InlineData("198.18.4.1", 0x78)]
    public void The_bucket_is_the_kernels(string source, int bucket) =>
        Assert.Equal(bucket, NftJhash.Bucket(IPAddress.Parse(source), 251, 0x4d455348));
}
