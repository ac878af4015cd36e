using System.Net;
using FsCheck;
using FsCheck.Fluent;
using Mesh.Discovery.Dns;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>FsCheck generators for DNS messages. Names come from a small label pool so compression kicks in.</summary>
internal static class DnsGenerators
{
    private static readonly string[] LabelPool = ["web", "WEB", "tasks", "example", "Test", "a", "_http", "_tcp", "appnet", "web.1"];

    public static Gen<byte[]> Bytes(int min, int max) =>
        Gen.Choose(min, max).SelectMany(n => Gen.ArrayOf(Gen.Choose(0, 255).Select(i => (byte)i), n));

    public static Gen<byte[]> Label =>
        Gen.Frequency(
            (6, Gen.Elements(LabelPool).Select(System.Text.Encoding.ASCII.GetBytes)),
            (1, Bytes(1, 63)));

    public static Gen<DnsName> Name =>
        Gen.Choose(0, 5).SelectMany(n => Gen.ListOf(Label, n)).Select(labels =>
        {
            var w = new List<byte>();
            foreach (var l in labels)
            {
                if (w.Count + l.Length + 2 > DnsName.MaxWireLength) break;
                w.Add((byte)l.Length);
                w.AddRange(l);
            }
            w.Add(0);
            return DnsName.FromWire(w.ToArray());
        });

    public static Gen<uint> UInt32 => Gen.Choose(int.MinValue, int.MaxValue).Select(i => unchecked((uint)i));
    public static Gen<ushort> UInt16 => Gen.Choose(0, 65535).Select(i => (ushort)i);

    public static Gen<DnsQuestion> Question =>
        from name in Name
        from type in Gen.Elements(DnsType.A, DnsType.AAAA, DnsType.SRV, DnsType.PTR, DnsType.ANY, (DnsType)65280)
        from cls in Gen.Elements(DnsClass.IN, DnsClass.CH, DnsClass.ANY)
        select new DnsQuestion(name, type, cls);

    public static Gen<DnsRecord> Record =>
        from name in Name
        from ttl in UInt32
        from cls in Gen.Frequency((5, Gen.Constant(DnsClass.IN)), (1, Gen.Elements(DnsClass.CH, (DnsClass)77)))
        from rec in Gen.OneOf(
            Bytes(4, 4).Select(b => (DnsType.A, (DnsRecordData)new ARecordData(new IPAddress(b)))),
            Bytes(16, 16).Select(b => (DnsType.AAAA, (DnsRecordData)new AaaaRecordData(new IPAddress(b)))),
            from t in Gen.Elements(DnsType.PTR, DnsType.CNAME, DnsType.NS) from n in Name select (t, (DnsRecordData)new NameRecordData(n)),
            from p in UInt16 from n in Name select (DnsType.MX, (DnsRecordData)new MxRecordData(p, n)),
            from p in UInt16 from w in UInt16 from port in UInt16 from n in Name
            select (DnsType.SRV, (DnsRecordData)new SrvRecordData(p, w, port, n)),
            from a in Name from b in Name from s in UInt32 from r in UInt32
            select (DnsType.SOA, (DnsRecordData)new SoaRecordData(a, b, s, r, 7, 8, 9)),
            Gen.Choose(1, 4).SelectMany(n => Gen.ListOf(Bytes(0, 255), n)).Select(l => (DnsType.TXT, (DnsRecordData)new TxtRecordData(l.ToArray()))),
            from t in Gen.Elements((DnsType)99, (DnsType)65000, (DnsType)46) from d in Bytes(0, 40)
            select (t, (DnsRecordData)new RawRecordData(d)))
        select new DnsRecord(name, rec.Item1, cls, ttl, rec.Item2);

    public static Gen<DnsEdns?> Edns =>
        Gen.Frequency(
            (1, Gen.Constant<DnsEdns?>(null)),
            (2, from size in UInt16
                from ext in Gen.Choose(0, 255)
                from ver in Gen.Elements(0, 0, 1)
                from flags in UInt16
                from opts in Gen.Choose(0, 3).SelectMany(n => Gen.ListOf(
                    from code in Gen.Elements((ushort)10, (ushort)8, (ushort)12, (ushort)65001) from d in Bytes(0, 40)
                    select new DnsEdnsOption(code, d), n))
                select (DnsEdns?)new DnsEdns
                {
                    UdpPayloadSize = size, ExtendedRcode = (byte)ext, Version = (byte)ver, Flags = flags, Options = opts.ToArray(),
                }));

    public static Gen<DnsMessage> Message =>
        from id in UInt16
        from flags in UInt16
        from qs in Gen.Choose(0, 2).SelectMany(n => Gen.ListOf(Question, n))
        from an in Gen.Choose(0, 8).SelectMany(n => Gen.ListOf(Record, n))
        from ns in Gen.Choose(0, 3).SelectMany(n => Gen.ListOf(Record, n))
        from ar in Gen.Choose(0, 3).SelectMany(n => Gen.ListOf(Record, n))
        from edns in Edns
        select Build(id, flags, qs, an, ns, ar, edns);

    private static DnsMessage Build(ushort id, ushort flags, IEnumerable<DnsQuestion> qs, IEnumerable<DnsRecord> an,
        IEnumerable<DnsRecord> ns, IEnumerable<DnsRecord> ar, DnsEdns? edns)
    {
        var m = new DnsMessage { Id = id, Flags = (ushort)(flags & ~DnsHeader.TcFlag), Edns = edns };
        m.Questions.AddRange(qs);
        m.Answers.AddRange(an);
        m.Authorities.AddRange(ns);
        m.Additionals.AddRange(ar);
        return m;
    }

    public static void AssertSameMessage(DnsMessage expected, DnsMessage actual)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.Flags, actual.Flags);
        Assert.Equal(expected.Questions, actual.Questions);
        Assert.Equal(expected.Answers, actual.Answers);
        Assert.Equal(expected.Authorities, actual.Authorities);
        Assert.Equal(expected.Additionals, actual.Additionals);
        Assert.Equal(expected.Edns, actual.Edns);
    }
}
