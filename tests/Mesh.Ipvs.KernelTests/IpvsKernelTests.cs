using System.Net;
using System.Net.Sockets;
using Mesh.Ipvs.Netlink;

namespace Mesh.Ipvs.KernelTests;

/// <summary>
/// Tests against the real IPVS of the user-mode-linux kernel. Each test gets a fresh network namespace
/// (IPVS state is per namespace) and cross-checks with Debian's ipvsadm and /proc/net/ip_vs.
/// </summary>
public static class IpvsKernelTests
{
    private static IPAddress A(string s) => IPAddress.Parse(s);

    private static readonly IpvsService Web = IpvsService.Tcp(A("10.0.0.1"), 80);

    public static IReadOnlyList<(string, Action)> All() =>
    [
        ("IsSupported_InRootAndNamespace", IsSupported),
        ("GetInfo_MatchesProcNetIpVs", GetInfo),
        ("CreateServiceAndDestinations_SeenByIpvsadmAndProc", CreateAndCrossCheck),
        ("UpdateServiceAndDestination", UpdateServiceAndDestination),
        ("DeleteDestinationAndService", DeleteDestinationAndService),
        ("DuplicateService_IsEEXIST", DuplicateService),
        ("DuplicateDestination_IsEEXIST", DuplicateDestination),
        ("MissingObjects_AreENOENT_Or_ESRCH", MissingObjects),
        ("Timeouts_RoundTrip", Timeouts),
        ("FirewallMarkServices_Ipv4AndIpv6_WithSchedulerFlags", FirewallMark),
        ("Ipv6Service_WithIpv6Destinations", Ipv6Service),
        ("Persistence_NetmaskAndOnePacket", Persistence),
        ("AllSchedulers_RoundTrip", AllSchedulers),
        ("ForwardingMethods_AndThresholds_AndTunnel", ForwardingMethods),
        ("ServicesMadeByIpvsadm_DecodeCorrectly", DecodeIpvsadmMade),
        ("Flush_RemovesEverything", Flush),
        ("Batch_200x5_ThenErrorsReportedPerOperation", Batch),
        ("Batch_3000AllFailing_EveryFailureReported", BatchAllFailing),
        ("LargeDump_2000Services_500Destinations", LargeDump),
        ("Namespaces_AreIsolated", Isolation),
        ("StatsAndZero", StatsAndZero),
    ];

    private static T WithHandle<T>(Func<TestNamespace, IpvsHandle, T> body)
    {
        using var ns = new TestNamespace();
        using var h = IpvsHandle.Open(ns.Path);
        return body(ns, h);
    }

    private static void WithHandle(Action<TestNamespace, IpvsHandle> body) => WithHandle<bool>((ns, h) => { body(ns, h); return true; });

    private static void IsSupported()
    {
        Check.True(IpvsHandle.IsSupported(), "IsSupported() in the root namespace");
        using var ns = new TestNamespace();
        Check.True(IpvsHandle.IsSupported(ns.Path), "IsSupported(netns)");
        using var h = IpvsHandle.Open(ns.Path);
        Check.Equal("IPVS", h.Family.Name, "family name");
        Check.True(h.Family.Id >= 0x10, "family id is dynamic");
    }

    private static void GetInfo() => WithHandle((ns, h) =>
    {
        var info = h.GetInfo();
        Check.Equal("1.2.1", info.VersionString, "version");
        var header = ns.ProcNetIpVs().Split('\n')[0];
        Check.Equal($"IP Virtual Server version 1.2.1 (size={info.ConnectionTableSize})", header, "/proc/net/ip_vs header");
    });

    private static void CreateAndCrossCheck() => WithHandle((ns, h) =>
    {
        h.NewService(Web);
        h.NewDestination(Web, new IpvsDestination(A("10.255.0.5"), 8080) { Weight = 3 });
        h.NewDestination(Web, new IpvsDestination(A("10.255.0.6"), 8080) { Weight = 1 });
        h.NewDestination(Web, new IpvsDestination(A("10.255.0.7"), 8080) { Weight = 0 });

        Check.ContainsLines(ns.Ipvsadm("-Sn"), "ipvsadm -Sn",
            "-A -t 10.0.0.1:80 -s rr",
            "-a -t 10.0.0.1:80 -r 10.255.0.5:8080 -m -w 3",
            "-a -t 10.0.0.1:80 -r 10.255.0.6:8080 -m -w 1",
            "-a -t 10.0.0.1:80 -r 10.255.0.7:8080 -m -w 0");
        Check.ContainsLines(ns.Ipvsadm("-Ln"), "ipvsadm -Ln",
            "TCP 10.0.0.1:80 rr",
            "-> 10.255.0.5:8080 Masq 3 0 0");
        Check.ContainsLines(ns.ProcNetIpVs(), "/proc/net/ip_vs",
            "TCP 0A000001:0050 rr",
            "-> 0AFF0005:1F90 Masq 3 0 0");

        var services = h.GetServices();
        Check.Equal(1, services.Count, "service count");
        Check.True(services[0].ConfigurationEquals(Web), $"dumped service {services[0]} equals {Web}");
        Check.True(services[0].Stats is not null, "service stats present");
        var one = h.GetService(Web);
        Check.True(one is not null && one.ConfigurationEquals(Web), "GetService(key)");
        var dests = h.GetDestinations(Web).OrderBy(d => d.Address.ToString()).ToList();
        Check.Equal(3, dests.Count, "destination count");
        Check.Equal(3, dests[0].Weight, "weight of .5");
        Check.Equal(8080, dests[0].Port, "port");
        Check.Equal(ForwardingMethod.Masquerade, dests[0].ForwardingMethod, "forwarding");
        Check.True(dests[2].ConfigurationEquals(new IpvsDestination(A("10.255.0.7"), 8080) { Weight = 0 }), $"dest {dests[2]}");
    });

    private static void UpdateServiceAndDestination() => WithHandle((ns, h) =>
    {
        h.NewService(Web);
        var d = new IpvsDestination(A("10.255.0.5"), 8080);
        h.NewDestination(Web, d);
        var updated = Web with { Scheduler = "wrr" };
        h.UpdateService(updated);
        h.UpdateDestination(Web, d with { Weight = 42, UpperThreshold = 1000, LowerThreshold = 100 });
        Check.ContainsLines(ns.Ipvsadm("-Sn"), "after update",
            "-A -t 10.0.0.1:80 -s wrr",
            "-a -t 10.0.0.1:80 -r 10.255.0.5:8080 -m -w 42"); // ipvsadm -S does not print -x/-y
        Check.ContainsLines(ns.Ipvsadm("-Ln", "--thresholds"), "ipvsadm --thresholds", "-> 10.255.0.5:8080 1000 100 0 0");
        Check.Equal("wrr", h.GetServices()[0].Scheduler, "scheduler after update");
        var back = h.GetDestinations(Web)[0];
        Check.Equal(42, back.Weight, "weight");
        Check.Equal(1000u, back.UpperThreshold, "u-threshold");
        Check.Equal(100u, back.LowerThreshold, "l-threshold");
    });

    private static void DeleteDestinationAndService() => WithHandle((ns, h) =>
    {
        h.NewService(Web);
        var d1 = new IpvsDestination(A("10.255.0.5"), 8080);
        var d2 = new IpvsDestination(A("10.255.0.6"), 8080);
        h.NewDestination(Web, d1);
        h.NewDestination(Web, d2);
        h.DeleteDestination(Web, d1);
        var left = h.GetDestinations(Web);
        Check.Equal(1, left.Count, "destinations after delete");
        Check.Equal(A("10.255.0.6"), left[0].Address, "remaining destination");
        Check.True(!ns.Ipvsadm("-Sn").Contains("10.255.0.5"), "ipvsadm no longer lists 10.255.0.5");
        h.DeleteService(Web);
        Check.Equal(0, h.GetServices().Count, "services after delete");
        Check.Equal("", ns.Ipvsadm("-Sn").Trim(), "ipvsadm -Sn empty");
        Check.True(h.GetService(Web) is null, "GetService of deleted service is null");
    });

    private static void DuplicateService() => WithHandle((ns, h) =>
    {
        h.NewService(Web);
        var e = Check.Throws<NetlinkException>(() => h.NewService(Web), "second NewService");
        Check.Equal(Errno.EEXIST, e.Errno, "errno");
        Check.True(e.AlreadyExists, "AlreadyExists");
        Check.True(e.Message.StartsWith("IPVS_CMD_NEW_SERVICE failed: EEXIST (17)", StringComparison.Ordinal), $"message: {e.Message}");
        // ipvsadm agrees it is a duplicate.
        var text = Shell.Run(["ip", "netns", "exec", ns.Name, "ipvsadm", "-A", "-t", "10.0.0.1:80"], null, check: false);
        Check.True(text.Contains("exists", StringComparison.OrdinalIgnoreCase), $"ipvsadm says exists: {text}");
    });

    private static void DuplicateDestination() => WithHandle((ns, h) =>
    {
        h.NewService(Web);
        var d = new IpvsDestination(A("10.255.0.5"), 8080);
        h.NewDestination(Web, d);
        var e = Check.Throws<NetlinkException>(() => h.NewDestination(Web, d), "second NewDestination");
        Check.Equal(Errno.EEXIST, e.Errno, "errno");
        Check.True(e.Message.StartsWith("IPVS_CMD_NEW_DEST failed: EEXIST (17)", StringComparison.Ordinal), e.Message);
    });

    private static void MissingObjects() => WithHandle((ns, h) =>
    {
        // The kernel answers ESRCH for a missing service and ENOENT for a missing destination (ip_vs_ctl.c).
        var e1 = Check.Throws<NetlinkException>(() => h.DeleteService(Web), "DeleteService(missing)");
        Check.Equal(Errno.ESRCH, e1.Errno, "missing service errno");
        Check.True(e1.NotFound, "NotFound for ESRCH");
        var e2 = Check.Throws<NetlinkException>(() => h.NewDestination(Web, new IpvsDestination(A("10.255.0.5"), 80)), "NewDestination(missing service)");
        Check.True(e2.NotFound, $"NotFound: {e2.Message}");
        h.NewService(Web);
        var e3 = Check.Throws<NetlinkException>(() => h.DeleteDestination(Web, new IpvsDestination(A("10.255.0.9"), 80)), "DeleteDestination(missing)");
        Check.Equal(Errno.ENOENT, e3.Errno, "missing destination errno");
        Check.True(e3.Message.StartsWith("IPVS_CMD_DEL_DEST failed: ENOENT (2)", StringComparison.Ordinal), e3.Message);
        var e4 = Check.Throws<NetlinkException>(() => h.UpdateDestination(Web, new IpvsDestination(A("10.255.0.9"), 80)), "UpdateDestination(missing)");
        Check.Equal(Errno.ENOENT, e4.Errno, "update missing destination errno");
        Check.True(h.GetService(IpvsService.Udp(A("10.9.9.9"), 1)) is null, "GetService(missing) is null");
        var e5 = Check.Throws<NetlinkException>(() => h.NewService(Web with { Scheduler = "nosuchsched" }), "unknown scheduler");
        Check.True(e5.Errno is Errno.ENOENT or Errno.EEXIST, $"unknown scheduler errno: {e5.Message}");
    });

    private static void Timeouts() => WithHandle((ns, h) =>
    {
        var t = new IpvsTimeouts(900, 120, 300);
        h.SetTimeouts(t);
        Check.Equal(t, h.GetTimeouts(), "GetTimeouts after SetTimeouts");
        Check.ContainsLines(ns.Ipvsadm("-L", "--timeout"), "ipvsadm --timeout", "Timeout (tcp tcpfin udp): 900 120 300");
        h.SetTimeouts(new IpvsTimeouts(0, 60, 0)); // 0 = unchanged
        Check.Equal(new IpvsTimeouts(900, 60, 300), h.GetTimeouts(), "partial update");
        Shell.Run("ip", "netns", "exec", ns.Name, "ipvsadm", "--set", "1000", "20", "30");
        Check.Equal(new IpvsTimeouts(1000, 20, 30), h.GetTimeouts(), "timeouts set by ipvsadm");
    });

    private static void FirewallMark() => WithHandle((ns, h) =>
    {
        var fw4 = IpvsService.ForFirewallMark(0x102, AddressFamily.InterNetwork, "mh") with { Flags = IpvsServiceFlags.HashFallback | IpvsServiceFlags.HashPort };
        var fw6 = IpvsService.ForFirewallMark(7, AddressFamily.InterNetworkV6, "sh") with { Flags = IpvsServiceFlags.HashPort };
        h.NewService(fw4);
        h.NewService(fw6);
        h.NewDestination(fw4, new IpvsDestination(A("10.255.0.5"), 0));
        h.NewDestination(fw4, new IpvsDestination(A("10.255.0.6"), 0) { Weight = 2 });
        h.NewDestination(fw6, new IpvsDestination(A("2001:db8::5"), 0));
        Check.ContainsLines(ns.Ipvsadm("-Sn"), "ipvsadm -Sn",
            "-A -f 258 -s mh -b mh-fallback,mh-port",
            "-a -f 258 -r 10.255.0.5:0 -m -w 1",
            "-a -f 258 -r 10.255.0.6:0 -m -w 2",
            "-A -f 7 -6 -s sh -b sh-port",
            "-a -f 7 -6 -r [2001:db8::5]:0 -m -w 1");
        Check.ContainsLines(ns.Ipvsadm("-Ln"), "ipvsadm -Ln", "FWM 258 mh (mh-fallback,mh-port)", "FWM 7 IPv6 sh (sh-port)");
        var svcs = h.GetServices();
        Check.True(svcs.Any(s => s.ConfigurationEquals(fw4)), "fw4 dumped");
        Check.True(svcs.Any(s => s.ConfigurationEquals(fw6)), "fw6 dumped");
        Check.Equal(2, h.GetDestinations(fw4).Count, "fw4 destinations");
        Check.Equal(A("2001:db8::5"), h.GetDestinations(fw6).Single().Address, "fw6 destination");
        h.DeleteService(fw4);
        Check.Equal(1, h.GetServices().Count, "after deleting fw4");
    });

    private static void Ipv6Service() => WithHandle((ns, h) =>
    {
        var s = IpvsService.Tcp(A("2001:db8::1"), 443, "wlc");
        h.NewService(s);
        h.NewDestination(s, new IpvsDestination(A("2001:db8::5"), 8443) { Weight = 5 });
        h.NewDestination(s, new IpvsDestination(A("2001:db8::6"), 8443));
        Check.ContainsLines(ns.Ipvsadm("-Sn"), "ipvsadm -Sn",
            "-A -t [2001:db8::1]:443 -s wlc",
            "-a -t [2001:db8::1]:443 -r [2001:db8::5]:8443 -m -w 5",
            "-a -t [2001:db8::1]:443 -r [2001:db8::6]:8443 -m -w 1");
        var back = h.GetServices().Single();
        Check.True(back.ConfigurationEquals(s), $"dumped {back}");
        Check.Equal(128u, back.Netmask, "IPv6 default netmask (prefix length)");
        var ds = h.GetDestinations(s);
        Check.True(ds.All(d => d.AddressFamily == AddressFamily.InterNetworkV6), "IPv6 destinations");
        var u = IpvsService.Udp(A("2001:db8::1"), 53);
        h.NewService(u);
        Check.Equal(2, h.GetServices().Count, "tcp+udp v6 services");
    });

    private static void Persistence() => WithHandle((ns, h) =>
    {
        var p4 = IpvsService.Udp(A("10.0.0.2"), 53, "wlc") with { Flags = IpvsServiceFlags.Persistent, Timeout = 300, Netmask = 0xFFFFFF00 };
        var p6 = IpvsService.Tcp(A("2001:db8::1"), 443, "lc") with { Flags = IpvsServiceFlags.Persistent, Timeout = 60, Netmask = 64 };
        var op = IpvsService.Udp(A("10.0.0.3"), 5000) with { Flags = IpvsServiceFlags.OnePacket };
        h.NewService(p4);
        h.NewService(p6);
        h.NewService(op);
        Check.ContainsLines(ns.Ipvsadm("-Sn"), "ipvsadm -Sn",
            "-A -u 10.0.0.2:53 -s wlc -p 300 -M 255.255.255.0",
            "-A -t [2001:db8::1]:443 -s lc -p 60 -M 64",
            "-A -u 10.0.0.3:5000 -s rr -o");
        var all = h.GetServices();
        Check.True(all.Any(s => s.ConfigurationEquals(p4)), "p4 round trip");
        Check.True(all.Any(s => s.ConfigurationEquals(p6)), "p6 round trip");
        Check.True(all.Any(s => s.ConfigurationEquals(op)), "one-packet round trip");
    });

    private static void AllSchedulers() => WithHandle((ns, h) =>
    {
        string[] names = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf"];
        for (int i = 0; i < names.Length; i++) h.NewService(IpvsService.Tcp(A("10.0.1." + (i + 1)), 80, names[i]));
        var got = h.GetServices().ToDictionary(s => s.Address!.ToString(), s => s.Scheduler);
        for (int i = 0; i < names.Length; i++) Check.Equal(names[i], got["10.0.1." + (i + 1)], $"scheduler {names[i]}");
        var save = ns.Ipvsadm("-Sn");
        foreach (var n in names) Check.True(save.Contains($"-s {n}\n", StringComparison.Ordinal), $"ipvsadm shows scheduler {n}");
    });

    private static void ForwardingMethods() => WithHandle((ns, h) =>
    {
        h.NewService(Web);
        var masq = new IpvsDestination(A("10.255.0.5"), 8080) { Weight = 3, UpperThreshold = 100, LowerThreshold = 10 };
        var dr = new IpvsDestination(A("10.255.0.6"), 80) { ForwardingMethod = ForwardingMethod.DirectRoute };
        var ipip = new IpvsDestination(A("10.255.0.7"), 80) { ForwardingMethod = ForwardingMethod.Tunnel };
        var gue = new IpvsDestination(A("10.255.0.8"), 80)
        {
            ForwardingMethod = ForwardingMethod.Tunnel, TunnelType = TunnelType.Gue, TunnelPort = 6080, TunnelFlags = TunnelFlags.NoChecksum,
        };
        var local = new IpvsDestination(A("127.0.0.1"), 80) { ForwardingMethod = ForwardingMethod.Local };
        foreach (var d in new[] { masq, dr, ipip, gue, local }) h.NewDestination(Web, d);
        Check.ContainsLines(ns.Ipvsadm("-Sn"), "ipvsadm -Sn",
            "-a -t 10.0.0.1:80 -r 10.255.0.5:8080 -m -w 3",
            "-a -t 10.0.0.1:80 -r 10.255.0.6:80 -g -w 1",
            "-a -t 10.0.0.1:80 -r 10.255.0.7:80 -i -w 1 --tun-type ipip",
            "-a -t 10.0.0.1:80 -r 10.255.0.8:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum");
        Check.ContainsLines(ns.Ipvsadm("-Ln", "--thresholds"), "ipvsadm --thresholds", "-> 10.255.0.5:8080 100 10 0 0");
        var back = h.GetDestinations(Web).ToDictionary(d => d.Address.ToString());
        Check.True(back["10.255.0.5"].ConfigurationEquals(masq), $"masq {back["10.255.0.5"]}");
        Check.True(back["10.255.0.6"].ConfigurationEquals(dr), $"dr {back["10.255.0.6"]}");
        Check.True(back["10.255.0.7"].ConfigurationEquals(ipip), $"ipip {back["10.255.0.7"]}");
        Check.True(back["10.255.0.8"].ConfigurationEquals(gue), $"gue {back["10.255.0.8"]} {back["10.255.0.8"].TunnelType}:{back["10.255.0.8"].TunnelPort}");
        Check.Equal(ForwardingMethod.Local, back["127.0.0.1"].ForwardingMethod, "local");
    });

    private static void DecodeIpvsadmMade() => WithHandle((ns, h) =>
    {
        ns.Ipvsadm("-A", "-t", "10.1.1.1:80", "-s", "wlc", "-p", "60", "-M", "255.255.0.0");
        ns.Ipvsadm("-a", "-t", "10.1.1.1:80", "-r", "10.2.2.2:80", "-g", "-w", "5", "-x", "10", "-y", "2");
        ns.Ipvsadm("-a", "-t", "10.1.1.1:80", "-r", "10.2.2.3:8080", "-m", "-w", "0");
        ns.Ipvsadm("-A", "-f", "99", "-s", "sh", "-b", "sh-fallback");
        ns.Ipvsadm("-A", "-u", "[fd00::1]:53", "-s", "rr");
        var svcs = h.GetServices().ToDictionary(s => s.Key.ToString());
        Check.True(svcs.Count == 3, $"3 services: {string.Join(", ", svcs.Keys)}");
        var tcp = svcs["TCP 10.1.1.1:80"];
        Check.Equal("wlc", tcp.Scheduler, "scheduler");
        Check.Equal(IpvsServiceFlags.Persistent, tcp.Flags, "flags (hashed stripped)");
        Check.Equal(60u, tcp.Timeout, "persistence timeout");
        Check.Equal(0xFFFF0000u, tcp.Netmask, "netmask");
        var fw = svcs["FWM 99 IPv4"];
        Check.Equal(IpvsServiceFlags.HashFallback, fw.Flags, "sh-fallback flag");
        Check.True(svcs.ContainsKey("UDP [fd00::1]:53"), "IPv6 udp service");
        var ds = h.GetDestinations(tcp).ToDictionary(d => d.Address.ToString());
        Check.Equal(ForwardingMethod.DirectRoute, ds["10.2.2.2"].ForwardingMethod, "-g");
        Check.Equal(5, ds["10.2.2.2"].Weight, "-w 5");
        Check.Equal(10u, ds["10.2.2.2"].UpperThreshold, "-x 10");
        Check.Equal(2u, ds["10.2.2.2"].LowerThreshold, "-y 2");
        Check.Equal(8080, ds["10.2.2.3"].Port, "masq port");
        Check.Equal(0, ds["10.2.2.3"].Weight, "-w 0");
    });

    private static void Flush() => WithHandle((ns, h) =>
    {
        for (int i = 1; i <= 5; i++) h.NewService(IpvsService.Tcp(A("10.0.2." + i), 80));
        h.NewService(IpvsService.ForFirewallMark(5));
        Check.Equal(6, h.GetServices().Count, "before flush");
        h.Flush();
        Check.Equal(0, h.GetServices().Count, "after flush");
        Check.Equal("", ns.Ipvsadm("-Sn").Trim(), "ipvsadm after flush");
    });

    private static void Batch() => WithHandle((ns, h) =>
    {
        var b = new IpvsBatch();
        for (int i = 0; i < 200; i++)
        {
            var s = IpvsService.Tcp(A($"10.3.{i / 250}.{i % 250 + 1}"), 80);
            b.NewService(s);
            for (int j = 0; j < 5; j++) b.NewDestination(s, new IpvsDestination(A($"10.4.{i % 250}.{j + 1}"), 8080));
        }
        h.Apply(b);
        Check.Equal(200, h.GetServices().Count, "services after batch");
        var save = ns.Ipvsadm("-Sn").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Check.Equal(200, save.Count(l => l.StartsWith("-A ", StringComparison.Ordinal)), "ipvsadm services");
        Check.Equal(1000, save.Count(l => l.StartsWith("-a ", StringComparison.Ordinal)), "ipvsadm destinations");

        // A batch with failures in the middle: everything else is applied, each failure is named.
        var dup = IpvsService.Tcp(A("10.3.0.1"), 80);
        var fresh = IpvsService.Tcp(A("10.5.0.1"), 80);
        var b2 = new IpvsBatch()
            .NewService(fresh)                                                    // 0 ok
            .NewService(dup)                                                      // 1 EEXIST
            .NewDestination(fresh, new IpvsDestination(A("10.6.0.1"), 80))        // 2 ok
            .DeleteDestination(fresh, new IpvsDestination(A("10.6.0.99"), 80))    // 3 ENOENT
            .NewDestination(fresh, new IpvsDestination(A("10.6.0.2"), 80));       // 4 ok
        var e = Check.Throws<NetlinkBatchException>(() => h.Apply(b2), "batch with failures");
        Check.Equal("1:17,3:2", string.Join(",", e.Failures.Select(f => $"{f.Index}:{f.Error.Errno}")), "failures");
        Check.True(e.Failures[0].Operation.Contains("IPVS_CMD_NEW_SERVICE TCP 10.3.0.1:80"), e.Failures[0].Operation);
        Check.Equal(2, h.GetDestinations(fresh).Count, "ops after a failure were applied");
        // Socket is still in step.
        Check.Equal(201, h.GetServices().Count, "service count after failed batch");
    });

    private static void BatchAllFailing() => WithHandle((ns, h) =>
    {
        var b = new IpvsBatch();
        for (int i = 0; i < 3000; i++) b.NewService(IpvsService.Tcp(A($"10.10.{i / 250}.{i % 250 + 1}"), 80));
        h.Apply(b);
        // Re-applying: every operation fails with EEXIST; none of the 3,000 error replies may be lost.
        var e = Check.Throws<NetlinkBatchException>(() => h.Apply(b), "re-applied batch");
        Check.Equal(3000, e.Failures.Count, "failures reported");
        Check.True(e.Failures.Select(f => f.Index).SequenceEqual(Enumerable.Range(0, 3000)), "failure indices 0..2999 in order");
        Check.True(e.Failures.All(f => f.Error.Errno == Errno.EEXIST), "all EEXIST");
        Check.Equal(3000, h.GetServices().Count, "service count");
        var del = new IpvsBatch();
        foreach (var s in h.GetServices()) del.DeleteService(s);
        h.Apply(del);
        Check.Equal(0, h.GetServices().Count, "all deleted by a batch");
    });

    private static void LargeDump() => WithHandle((ns, h) =>
    {
        var b = new IpvsBatch();
        for (int i = 0; i < 2000; i++) b.NewService(IpvsService.Tcp(A($"10.7.{i / 250}.{i % 250 + 1}"), (ushort)(1000 + i)));
        var big = IpvsService.Udp(A("10.8.0.1"), 53);
        b.NewService(big);
        for (int j = 0; j < 500; j++) b.NewDestination(big, new IpvsDestination(A($"10.9.{j / 250}.{j % 250 + 1}"), 53));
        h.Apply(b);
        var all = h.GetServices();
        Check.Equal(2001, all.Count, "services dumped");
        Check.Equal(2001, all.Select(s => s.Key).Distinct().Count(), "distinct keys");
        Check.Equal(500, h.GetDestinations(big).Count, "destinations dumped");
        var procLines = ns.ProcNetIpVs().Split('\n').Count(l => l.StartsWith("TCP ", StringComparison.Ordinal) || l.StartsWith("UDP ", StringComparison.Ordinal));
        Check.Equal(2001, procLines, "/proc/net/ip_vs services");
    });

    private static void Isolation()
    {
        using var a = new TestNamespace();
        using var b = new TestNamespace();
        using var ha = IpvsHandle.Open(a.Path);
        using var hb = IpvsHandle.Open(b.Path);
        ha.NewService(Web);
        Check.Equal(1, ha.GetServices().Count, "namespace a");
        Check.Equal(0, hb.GetServices().Count, "namespace b");
        Check.Equal("", b.Ipvsadm("-Sn").Trim(), "ipvsadm in b");
        using var root = IpvsHandle.Open();
        Check.True(root.GetServices().All(s => s.Key != Web.Key), "root namespace untouched");
        hb.NewService(Web); // same key, different namespace: no EEXIST
    }

    private static void StatsAndZero() => WithHandle((ns, h) =>
    {
        h.NewService(Web);
        h.NewDestination(Web, new IpvsDestination(A("10.255.0.5"), 80));
        var s = h.GetServices().Single();
        Check.True(s.Stats is not null, "service stats");
        Check.Equal(0UL, s.Stats!.Connections, "no connections yet");
        var d = h.GetDestinations(Web).Single();
        Check.True(d.Stats is not null, "destination stats");
        h.Zero(Web);
        h.Zero();
    });
}
