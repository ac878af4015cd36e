using System.Globalization;

namespace Mesh.Ingress.Trace;

/// <summary>
/// The ports something listens on in the calling process's network namespace, from <c>/proc/self/net/tcp</c> and
/// <c>udp</c> (TCP sockets in LISTEN, bound UDP sockets), on any local address: enough to tell "refused" from "a local
/// process answers" for a port the mesh does not publish.
/// </summary>
public static class ProcNetListeners
{
    private const string TcpListen = "0A";
    private const string UdpUnconnected = "07";

    public static IReadOnlySet<(string Protocol, int Port)> Read()
    {
        var result = new HashSet<(string, int)>();
        foreach (var (proto, file) in new[] { ("tcp", "/proc/self/net/tcp"), ("udp", "/proc/self/net/udp") })
        {
            if (File.Exists(file))
            {
                result.UnionWith(Parse(proto, File.ReadAllText(file)).Select(p => (proto, p)));
            }
        }

        return result;
    }

    /// <summary>The local ports of the listening (tcp) or bound (udp) sockets in one <c>/proc/net/{tcp,udp}</c> table.</summary>
    public static IEnumerable<int> Parse(string protocol, string table)
    {
        var state = protocol == "tcp" ? TcpListen : UdpUnconnected;
        foreach (var line in table.Split('\n').Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 3 && fields[3] == state && fields[1].Split(':') is [_, var hex]
                && int.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var port))
            {
                yield return port;
            }
        }
    }
}
