namespace Mesh.Ipvs;

/// <summary>Virtual service protocol (IPPROTO_* numbers, as IPVS_SVC_ATTR_PROTOCOL carries them).</summary>
public enum IpvsProtocol : ushort
{
    /// <summary>No protocol: firewall-mark services.</summary>
    None = 0,
    Tcp = 6,
    Udp = 17,
    Sctp = 132,
}

/// <summary>Virtual service flags IP_VS_SVC_F_* from ip_vs.h.</summary>
[Flags]
public enum IpvsServiceFlags : uint
{
    None = 0,
    /// <summary>IP_VS_SVC_F_PERSISTENT (ipvsadm -p).</summary>
    Persistent = 0x0001,
    /// <summary>IP_VS_SVC_F_HASHED: kernel-internal; stripped from decoded services.</summary>
    Hashed = 0x0002,
    /// <summary>IP_VS_SVC_F_ONEPACKET (ipvsadm -o).</summary>
    OnePacket = 0x0004,
    /// <summary>IP_VS_SVC_F_SCHED1: sh-fallback / mh-fallback.</summary>
    Scheduler1 = 0x0008,
    /// <summary>IP_VS_SVC_F_SCHED2: sh-port / mh-port.</summary>
    Scheduler2 = 0x0010,
    /// <summary>IP_VS_SVC_F_SCHED3.</summary>
    Scheduler3 = 0x0020,
    /// <summary>IP_VS_SVC_F_SCHED_SH_FALLBACK: sh/mh skip to another destination if the chosen one is unavailable.</summary>
    HashFallback = Scheduler1,
    /// <summary>IP_VS_SVC_F_SCHED_SH_PORT: sh/mh hash the source port too.</summary>
    HashPort = Scheduler2,
}

/// <summary>Scheduler names the kernel ships (ip_vs_&lt;name&gt;.ko). Any other name is passed through.</summary>
public static class IpvsSchedulers
{
    public const string RoundRobin = "rr";
    public const string WeightedRoundRobin = "wrr";
    public const string LeastConnection = "lc";
    public const string WeightedLeastConnection = "wlc";
    public const string LocalityBasedLeastConnection = "lblc";
    public const string LocalityBasedLeastConnectionReplicated = "lblcr";
    public const string DestinationHashing = "dh";
    public const string SourceHashing = "sh";
    public const string ShortestExpectedDelay = "sed";
    public const string NeverQueue = "nq";
    public const string Maglev = "mh";
    public const string WeightedFailover = "fo";
    public const string WeightedOverflow = "ovf";
}
