using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Ipvs.Netlink.Conntrack;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// <see cref="ConntrackTable"/> against this machine's kernel (root, as the other kernel tests): a throw-away namespace
/// where an nft output-hook rule DNATs 10.77.0.1:8080 to 10.77.0.2:9000, real TCP connections through it (sockets
/// opened in the namespace), and the dump read back: one DNAT entry per open connection, with the translated
/// destination, beside an entry for a connection made straight to the server (no DNAT).
/// </summary>
public sealed class ConntrackKernelTests : IDisposable
{
    private readonly string _name = $"ctt-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
    private readonly List<Socket> _sockets = [];

    public ConntrackKernelTests()
    {
        Run(null, "ip", "netns", "add", _name);
        Run(_name, "ip", "link", "set", "lo", "up");
        Run(_name, "ip", "addr", "add", "10.77.0.1/32", "dev", "lo");
        Run(_name, "ip", "addr", "add", "10.77.0.2/32", "dev", "lo");
        Run(_name, "nft", "add table ip t; add chain ip t out { type nat hook output priority -100; }; add rule ip t out tcp dport 8080 dnat to 10.77.0.2:9000");
    }

    private string NetnsPath => "/run/netns/" + _name;

    [Fact]
    public void Open_DNATed_connections_are_dumped_with_their_translated_destination_and_the_limit_stops_the_dump()
    {
        var listener = InNamespace(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Parse("10.77.0.2"), 9000));
            s.Listen();
            return s;
        });
        for (var i = 0; i < 3; i++)
        {
            Connect(new IPEndPoint(IPAddress.Parse("10.77.0.1"), 8080));
        }

        Connect(new IPEndPoint(IPAddress.Parse("10.77.0.2"), 9000)); // straight to the server: no DNAT
        for (var i = 0; i < 4; i++)
        {
            _sockets.Add(listener.Accept());
        }

        var entries = new List<ConntrackEntry>();
        var all = ConntrackTable.Dump(NetnsPath, 1000, entries.Add);

        Assert.Equal(new ConntrackDumpResult(4, false), all);
        var dnat = entries.Where(e => e.DnatDestination is not null).ToList();
        Assert.Equal(3, dnat.Count);
        Assert.All(dnat, e =>
        {
            Assert.Equal(new IPEndPoint(IPAddress.Parse("10.77.0.2"), 9000), e.DnatDestination);
            Assert.Equal(8080, e.Original.DestinationPort);
            Assert.Equal(IPAddress.Parse("10.77.0.1"), e.Original.Destination);
            Assert.Equal(6, e.Original.Protocol);
            Assert.Equal(TcpConntrackState.Established, e.TcpState);
        });
        Assert.Equal(3, dnat.Select(e => e.Original.SourcePort).Distinct().Count());
        var direct = Assert.Single(entries, e => e.DnatDestination is null);
        Assert.Equal(9000, direct.Original.DestinationPort);

        var some = new List<ConntrackEntry>();
        Assert.Equal(new ConntrackDumpResult(2, true), ConntrackTable.Dump(NetnsPath, 2, some.Add));
        Assert.Equal(2, some.Count);
        Assert.Equal(new ConntrackDumpResult(4, false), ConntrackTable.Dump(NetnsPath, 4, _ => { }));
        listener.Dispose();
    }

    private void Connect(IPEndPoint to) => _sockets.Add(InNamespace(() =>
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Connect(to);
        return s;
    }));

    private T InNamespace<T>(Func<T> work) => NetworkNamespace.Run(NetnsPath, work);

    private static void Run(string? netns, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? file : "ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (netns is not null)
        {
            foreach (var a in new[] { "netns", "exec", netns, file }) psi.ArgumentList.Add(a);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {stderr.Result}");
    }

    public void Dispose()
    {
        foreach (var s in _sockets) s.Dispose();
        try { Run(null, "ip", "netns", "del", _name); }
        catch (Xunit.Sdk.XunitException) { } // best effort
    }
}
