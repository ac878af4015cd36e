using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.Netlink.GenetlinkConstants;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// Real netlink against this machine's kernel, no privileges needed: the generic netlink controller exists on
/// every kernel, IPVS does not exist here (6.18 without CONFIG_IP_VS).
/// </summary>
public class KernelNetlinkTests
{
    private static bool IsRoot => Environment.UserName == "root";

    [Fact]
    public void Nlctrl_Resolves_UnknownFamily_IsNull()
    {
        using var s = NetlinkSocket.Open(NetlinkConstants.NETLINK_GENERIC);
        Assert.NotEqual(0u, s.PortId);
        var ctrl = GenericNetlink.TryResolve(s, "nlctrl");
        Assert.NotNull(ctrl);
        Assert.Equal(GENL_ID_CTRL, ctrl.Id);
        Assert.Null(GenericNetlink.TryResolve(s, "NO_SUCH_FAMILY"));
    }

    [Fact]
    public void IsSupported_MatchesProcNetIpVs_AndOpenThrowsTypedException()
    {
        bool expected = File.Exists("/proc/net/ip_vs");
        Assert.Equal(expected, IpvsHandle.IsSupported());
        if (!expected)
        {
            var ex = Assert.Throws<IpvsNotSupportedException>(() => IpvsHandle.Open());
            Assert.Equal(Errno.ENOENT, ex.Errno);
            Assert.Contains("CTRL_CMD_GETFAMILY(IPVS) failed: ENOENT (2)", ex.Message);
        }
    }

    [Fact]
    public void FamilyDump_IsMultipart_AndContainsNlctrl()
    {
        using var s = NetlinkSocket.Open(NetlinkConstants.NETLINK_GENERIC);
        var w = new NetlinkWriter();
        uint seq = s.NextSequence();
        w.BeginMessage(GENL_ID_CTRL, NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump, seq);
        w.PutGenlHeader(CTRL_CMD_GETFAMILY, CTRL_VERSION);
        w.EndMessage();
        var msgs = s.Request(w.WrittenSpan, seq, dump: true, "CTRL_CMD_GETFAMILY (dump)");
        Assert.True(msgs.Count > 3);
        Assert.All(msgs, m => Assert.True((m.Flags & NetlinkMessageFlags.Multi) != 0));
        Assert.Contains(msgs.Select(m => GenericNetlink.ParseFamily(m)), f => f.Name == "nlctrl");
    }

    [Fact]
    public void Batch_AgainstRealKernel_ReportsEachFailureAtItsIndex()
    {
        // 3,000 GETFAMILY requests (several datagrams); every third asks for a family that does not exist.
        using var s = NetlinkSocket.Open(NetlinkConstants.NETLINK_GENERIC);
        const int n = 3000;
        var w = new NetlinkWriter();
        var offsets = new List<int>();
        uint first = s.NextSequence();
        for (int i = 1; i < n; i++) s.NextSequence();
        for (int i = 0; i < n; i++)
        {
            offsets.Add(w.Length);
            var flags = NetlinkMessageFlags.Request | (i == n - 1 ? NetlinkMessageFlags.Ack : 0);
            w.BeginMessage(GENL_ID_CTRL, flags, unchecked(first + (uint)i));
            w.PutGenlHeader(CTRL_CMD_GETFAMILY, CTRL_VERSION);
            w.PutStringZ(CTRL_ATTR_FAMILY_NAME, i % 3 == 0 ? "NO_SUCH_FAMILY" : "nlctrl");
            w.EndMessage();
        }
        Assert.True(w.Length > 2 * NetlinkSocket.MaxBatchDatagram);
        var failures = s.SendBatch(w.WrittenSpan, offsets, first, "batch");
        Assert.Equal(Enumerable.Range(0, n).Where(i => i % 3 == 0), failures.Select(f => f.Index));
        Assert.All(failures, f => Assert.Equal(Errno.ENOENT, f.Error.Errno));
        // The socket is still in step afterwards.
        Assert.NotNull(GenericNetlink.TryResolve(s, "nlctrl"));
    }

    [Fact]
    public void NetworkNamespace_Run_ReturnsResult_RethrowsErrors_ReportsBadPath()
    {
        if (!IsRoot) return; // setns needs CAP_SYS_ADMIN, even into one's own namespace
        int threadId = Environment.CurrentManagedThreadId;
        int ran = NetworkNamespace.Run("/proc/self/ns/net", () => Environment.CurrentManagedThreadId);
        Assert.NotEqual(threadId, ran);
        Assert.Throws<InvalidOperationException>(() => NetworkNamespace.Run("/proc/self/ns/net", () => throw new InvalidOperationException("x")));
        var ex = Assert.Throws<NetworkNamespaceException>(() => NetworkNamespace.Run("/var/run/netns/does-not-exist-mesh", () => 1));
        Assert.Equal(Errno.ENOENT, ex.Errno);
        Assert.Equal("open(/var/run/netns/does-not-exist-mesh) failed: No such file or directory (ENOENT, errno 2)", ex.Message);
    }

    [Fact]
    public void Socket_InOwnNamespaceByPath_Works()
    {
        if (!IsRoot) return;
        using var s = NetlinkSocket.Open(NetlinkConstants.NETLINK_GENERIC, "/proc/self/ns/net");
        Assert.NotNull(GenericNetlink.TryResolve(s, "nlctrl"));
        Assert.Equal(File.Exists("/proc/net/ip_vs"), IpvsHandle.IsSupported("/proc/self/ns/net"));
    }
}
