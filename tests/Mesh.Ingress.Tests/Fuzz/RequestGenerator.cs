using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>
/// Structure-aware request generator: builds valid requests for every endpoint from small name pools (so the
/// state stays bounded and requests collide with what exists), then mutates them — JSON values of the wrong type,
/// huge and unicode values, control characters, path tricks, missing/extra/duplicate keys, broken bodies, odd
/// methods, URLs and content types, and raw malformed HTTP. Everything comes from one seeded <see cref="Random"/>.
/// </summary>
internal sealed class RequestGenerator(Random random)
{
    private static readonly string[] Services = ["web", "api", "db", "cache", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"];
    private static readonly string[] Nodes = ["n1", "n2", "n3", "n4", "n5"];
    private static readonly string[] Networks = ["appnet", "net1", "net2", "net3", "net4", "net5"];

    /// <summary>Strings that break things elsewhere: rule and file syntax, path tricks, unicode, controls.</summary>
    private static readonly string[] Nasty =
    [
        "", " ", "a b", "-", "a-", "-a", "a..b", ".", "..", "...", "web.", ".web", "WEB", "wEb", "tasks", "tasks.web", "ingress", "INGRESS",
        "x\n-A INPUT -j ACCEPT", "web\r\nX-Injected: 1", "include \"/etc/shadow\"", "web;reboot", "$(id)", "`id`", "web\"", "web'", "web\\",
        "a\u0000b", "\u0000", "web\t", "\u001b[31mred", "\u007f", "\u0085", "\u2028", "\u2029", "\u202eevil", "e\u0301", "\u0430pi", "ｗｅｂ", "web\u200b",
        "\ufeffweb", "🙂", "x%00y", "%2e%2e", "a/b", "/", "//", "/proc/1/ns/net", "/proc/self/ns/net", "/proc//1/ns/net", "/proc/1/ns/../ns/net",
        "/var/run/netns/../../proc/1/ns/net", "/etc/shadow", "/etc/passwd", "/dev/stdin", "/dev/zero", "/..", "/a/..", "/a/../b", "relative/path",
        "~root/.ssh", "/tmp/x\n-A INPUT -j ACCEPT", "/run/netns/mesh-fuzz\u0000.tmp", "C:\\Windows", "/" + new string('a', 5000),
        "10.0.1.5\n", " 10.0.1.5", "10.0.1.5 ", "010.000.001.005", "10.0.1.5/32", "0x0a000105", "167772421", "10.1", "::ffff:10.0.1.5", "10.0.1.5%eth0",
        "255.255.255.255", "0.0.0.0", "127.0.0.1", "10.255.255.255", "10.255.0.0", "10.255.0.1", "10.0.1.0/24", "10.0.0.0/8", "0.0.0.0/0", "10.0.1.0/33", "10.0.1.1/24",
        "tcp", "udp", "TCP", "sctp", "vip", "dnsrr", "VIP", "Dnsrr", "dns_rr", "1", "0",
    ];

    /// <summary>Paths in otherwise valid task bodies, so each trick meets a request that could be accepted.</summary>
    private static readonly string[] PathTricks =
    [
        "/proc/1/ns/net", "/proc/self/ns/net", "/proc//1/ns/net", "/proc/1/ns/./net", "/var/run/netns/../../proc/1/ns/net", "/var/run/netns/x/..",
        "/var/run/netns/..", "/etc/shadow", "/tmp/mesh-fuzz-link", "/run/netns/a\u0000b",
        "/run/netns/a\nb", "/run/netns/a\rb", "/run/netns/\u202eevil", "/run/netns/e\u0301", "//run//netns//x", "/run/netns/x%2F..%2F..",
        "/dev/stdin", "/" + new string('a', 4096), "/run/netns/" + new string('\u00e9', 2100),
    ];

    private static readonly string[] ContentTypes =
    [
        "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        "application/json; charset=utf-16", "application/xml", "", "\u0000", "application/json\r\nX-Injected: 1", new string('a', 3000),
    ];

    /// <summary>Non-ASCII goes into bodies as raw UTF-8 (as a real client sends it), not as \u escapes.</summary>
    private static readonly JsonSerializerOptions Raw = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, MaxDepth = 2048 };

    private readonly Random _r = random;

    /// <summary>A request shaped by what exists now (<paramref name="state"/>), so deletes and references hit real objects.</summary>
    public FuzzRequest Next(ClusterState state)
    {
        var roll = _r.Next(100);
        return roll switch
        {
            < 30 => Valid(state),
            < 70 => MutatedBody(state),
            < 78 => BrokenBody(state),
            < 88 => OddRequest(state),
            < 94 => Reads(state),
            _ => RawHttp(state),
        };
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[_r.Next(items.Count)];

    private bool Chance(int percent) => _r.Next(100) < percent;

    private string ServiceName(ClusterState state) =>
        state.Services.Count > 0 && Chance(60) ? Pick(state.Services).Name : Pick(Services);

    private string NodeName(ClusterState state) =>
        Chance(85) ? Pick(Nodes) : Pick(state.Nodes.Where(n => n.Name != FuzzDaemon.NodeName).Select(n => n.Name).DefaultIfEmpty("n1").ToArray());

    // ---- valid requests -------------------------------------------------------------------------------------

    private FuzzRequest Valid(ClusterState state)
    {
        var roll = _r.Next(100);
        return roll switch
        {
            < 10 => Post("/v1/networks", NetworkBody(), "valid network"),
            < 22 => Post("/v1/nodes", NodeBody(), "valid node"),
            < 45 => Post("/v1/services", ServiceBody(state), "valid service"),
            < 75 => Post("/v1/tasks", TaskBody(state), "valid task"),
            < 85 => new FuzzRequest("DELETE", "/v1/services/" + Uri.EscapeDataString(ServiceName(state)), null, null, "delete service"),
            _ => new FuzzRequest("DELETE", "/v1/tasks/" + Uri.EscapeDataString(state.Tasks.Count > 0 && Chance(80) ? Pick(state.Tasks).Name : "web.1"), null, null, "delete task"),
        };
    }

    private JsonObject NetworkBody()
    {
        var k = _r.Next(1, 9);
        return new JsonObject { ["name"] = Pick(Networks), ["subnet"] = $"10.{k}.{_r.Next(0, 3)}.0/24", ["vni"] = 4096 + k };
    }

    private JsonObject NodeBody() =>
        new() { ["name"] = Pick(Nodes), ["advertiseAddress"] = $"198.18.0.{_r.Next(11, 20)}" };

    private JsonObject ServiceBody(ClusterState state)
    {
        var body = new JsonObject { ["name"] = Pick(Services) };
        if (Chance(30))
        {
            body["mode"] = Chance(50) ? "vip" : "dnsrr";
        }

        if (Chance(70))
        {
            var ports = new JsonArray();
            for (var i = _r.Next(1, 3); i > 0; i--)
            {
                var port = new JsonObject { ["published"] = _r.Next(8000, 8040), ["target"] = _r.Next(1, 65536) };
                if (Chance(40))
                {
                    port["protocol"] = Chance(50) ? "tcp" : "udp";
                }

                ports.Add(port);
            }

            body["ports"] = ports;
        }

        var custom = state.Networks.Where(n => n.Name != OverlayNetwork.IngressName).ToList();
        if (custom.Count > 0 && Chance(40))
        {
            body["networks"] = new JsonArray(JsonValue.Create(Pick(custom).Name));
        }

        if (Chance(25))
        {
            body["aliases"] = new JsonArray(JsonValue.Create(Pick(Services) + "-alias"), JsonValue.Create($"a{_r.Next(20)}.example"));
        }

        return body;
    }

    private JsonObject TaskBody(ClusterState state)
    {
        var service = ServiceName(state);
        var body = new JsonObject { ["service"] = service, ["node"] = NodeName(state) };
        if (Chance(50))
        {
            body["name"] = $"{service}.{_r.Next(1, 6)}";
        }

        if (Chance(40))
        {
            body["netnsPath"] = Chance(30) ? Pick(PathTricks) : $"/var/run/netns/mesh-fuzz-{service}-{_r.Next(5)}";
        }

        if (Chance(20))
        {
            body["resolvConfPath"] = Chance(30) ? Pick(PathTricks) : $"/run/mesh/tasks/{service}-{_r.Next(5)}/resolv.conf";
        }

        if (Chance(20))
        {
            body["aliases"] = new JsonArray(JsonValue.Create($"t{_r.Next(10)}"));
        }

        var svc = state.Services.FirstOrDefault(s => s.Name == service);
        if (svc is not null && Chance(30) && svc.Ports.Count > 0)
        {
            body["addresses"] = new JsonObject { ["ingress"] = $"10.255.{_r.Next(0, 2)}.{_r.Next(0, 256)}" };
        }

        return body;
    }

    private static FuzzRequest Post(string path, JsonNode body, string mutation) =>
        new("POST", path, "application/json", Encoding.UTF8.GetBytes(body.ToJsonString(Raw)), mutation);

    // ---- mutations of valid bodies ----------------------------------------------------------------------------

    private (string Path, JsonObject Body) AnyValidBody(ClusterState state) => _r.Next(4) switch
    {
        0 => ("/v1/networks", NetworkBody()),
        1 => ("/v1/nodes", NodeBody()),
        2 => ("/v1/services", ServiceBody(state)),
        _ => ("/v1/tasks", TaskBody(state)),
    };

    private FuzzRequest MutatedBody(ClusterState state)
    {
        var (path, body) = AnyValidBody(state);
        var applied = new List<string>();
        JsonNode root = body;
        for (var n = _r.Next(1, 4); n > 0; n--)
        {
            root = Mutate(root, applied);
        }

        var text = root.ToJsonString(Raw);

        // Things a JsonNode cannot hold are spliced into the text: unpaired surrogates, raw control bytes.
        if (Chance(10) && text.Contains('"', StringComparison.Ordinal))
        {
            var at = text.IndexOf('"', _r.Next(text.Length / 2 + 1));
            if (at > 0)
            {
                var splice = Pick(new[] { "\\ud800", "\\udfff", "\\ud83d", "\\u0000", "\\n", "\\r\\n", "\\t", "\\u001b", "\\u2028" });
                text = text[..(at + 1)] + splice + text[(at + 1)..];
                applied.Add("splice " + splice);
            }
        }

        return new FuzzRequest("POST", path, "application/json", Encoding.UTF8.GetBytes(text), "mutated: " + string.Join(", ", applied));
    }

    private JsonNode Mutate(JsonNode root, List<string> applied)
    {
        var slots = new List<(JsonNode Parent, object Key)>();
        Collect(root, slots);
        if (slots.Count == 0 || Chance(5))
        {
            applied.Add("whole body replaced");
            return Value(applied) ?? JsonValue.Create(0);
        }

        var (parent, key) = Pick(slots);
        var roll = _r.Next(100);
        if (roll < 12 && parent is JsonObject po)
        {
            po.Remove((string)key);
            applied.Add($"removed {key}");
        }
        else if (roll < 20 && parent is JsonObject pe)
        {
            var extra = Pick(new[] { "extra", "Name", "NAME", "state", "firewallMark", "vips", "ingressSandboxIp", "revision", "__proto__", "$type", "nam\u0000e" });
            pe[extra] = Value(applied);
            applied.Add($"extra field {FuzzRequest.Show(extra, 20)}");
        }
        else
        {
            var value = Value(applied);
            if (parent is JsonObject o)
            {
                o[(string)key] = value;
            }
            else
            {
                ((JsonArray)parent)[(int)key] = value;
            }

            applied.Add($"at {FuzzRequest.Show(key.ToString()!, 20)}");
        }

        return root;
    }

    private static void Collect(JsonNode node, List<(JsonNode, object)> slots)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o.ToList())
                {
                    slots.Add((o, k));
                    if (v is not null)
                    {
                        Collect(v, slots);
                    }
                }

                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    slots.Add((a, i));
                    if (a[i] is { } v)
                    {
                        Collect(v, slots);
                    }
                }

                break;
        }
    }

    /// <summary>A replacement value: wrong types, extremes, nasty strings, deep or huge structures.</summary>
    private JsonNode? Value(List<string> applied)
    {
        var roll = _r.Next(100);
        switch (roll)
        {
            case < 30:
                var s = Pick(Nasty);
                applied.Add($"string '{FuzzRequest.Show(s, 30)}'");
                return JsonValue.Create(s);
            case < 38:
                applied.Add("null");
                return null;
            case < 46:
                var number = Pick(new JsonNode[]
                {
                    JsonValue.Create(0), JsonValue.Create(-1), JsonValue.Create(65536), JsonValue.Create(int.MaxValue), JsonValue.Create(long.MaxValue),
                    JsonValue.Create(1.5), JsonValue.Create(-0.0), JsonValue.Create(1e300), JsonValue.Create(decimal.MaxValue), JsonValue.Create(4096), JsonValue.Create(16_777_216),
                });
                applied.Add($"number {number.ToJsonString(Raw)}");
                return number;
            case < 52:
                applied.Add("bool");
                return JsonValue.Create(Chance(50));
            case < 58:
                applied.Add("empty object/array");
                return Chance(50) ? new JsonObject() : new JsonArray();
            case < 61:
                var length = Pick(new[] { 254, 4097, 70_000 });
                applied.Add($"string of {length}");
                return JsonValue.Create(new string(Pick(new[] { 'a', '/', '.', '\u00e9', '\n' }), length));
            case < 64:
                var count = Pick(new[] { 100, 1000, 5000 });
                var distinct = Chance(50);
                applied.Add($"array of {count} {(distinct ? "distinct names" : "ports")}");
                var array = new JsonArray();
                for (var i = 0; i < count; i++)
                {
                    array.Add(distinct ? JsonValue.Create($"x{i}") : new JsonObject { ["published"] = 10_000 + i, ["target"] = 80 });
                }

                return array;
            case < 66:
                var depth = Pick(new[] { 63, 65, 200, 5000 });
                applied.Add($"nested {depth} deep");
                JsonNode nested = JsonValue.Create("x");
                for (var i = 0; i < Math.Min(depth, 500); i++)
                {
                    nested = Chance(50) ? new JsonArray(nested) : new JsonObject { ["a"] = nested };
                }

                return nested;
            case < 84:
                applied.Add("port object");
                return new JsonObject { ["published"] = Pick(new[] { 0, 1, 80, 65535, 65536, -8080 }), ["target"] = Pick(new[] { 0, 22, 65535, 70000 }), ["protocol"] = Pick(Nasty) };
            case < 92:
                applied.Add("addresses map");
                return new JsonObject { [Pick(Nasty)] = Pick(Nasty), ["ingress"] = Pick(Nasty) };
            default:
                applied.Add("array of nasty strings");
                return new JsonArray(JsonValue.Create(Pick(Nasty)), JsonValue.Create(Pick(Nasty)));
        }
    }

    // ---- bodies that are not (valid) JSON -----------------------------------------------------------------------

    private FuzzRequest BrokenBody(ClusterState state)
    {
        var (path, body) = AnyValidBody(state);
        var text = body.ToJsonString(Raw);
        var roll = _r.Next(10);
        var (bytes, what) = roll switch
        {
            0 => (Encoding.UTF8.GetBytes(text[..Math.Max(0, _r.Next(text.Length))]), "truncated"),
            1 => (Encoding.UTF8.GetBytes(text.Replace("{", "{\"name\":\"dup\",", StringComparison.Ordinal)), "duplicate keys"),
            2 => (Encoding.UTF8.GetBytes(new string('[', 100_000) + new string(']', 100_000)), "100k nested arrays"),
            3 => (RandomBytes(_r.Next(1, 2000)), "random bytes"),
            4 => (Encoding.UTF8.GetBytes(text).Prepend((byte)0xff).ToArray(), "invalid UTF-8 first byte"),
            5 => (Encoding.UTF8.GetBytes(text.Replace("\"", "\"\\u0000", StringComparison.Ordinal)), "NUL in every string"),
            6 => (Encoding.UTF8.GetBytes(text + " " + text), "two objects"),
            7 => (Encoding.UTF8.GetBytes(text.Replace(":", ": /* c */ ", StringComparison.Ordinal) + ","), "comments and trailing comma"),
            8 => (Encoding.Unicode.GetBytes(text), "UTF-16 body"),
            _ => (Encoding.UTF8.GetBytes(Pick(new[] { "null", "[]", "0", "\"x\"", "true", "{}", "", " ", "{\"\":1}" })), "scalar or empty"),
        };
        return new FuzzRequest("POST", path, Chance(80) ? "application/json" : Pick(ContentTypes), bytes, "broken body: " + what);
    }

    private byte[] RandomBytes(int n)
    {
        var bytes = new byte[n];
        _r.NextBytes(bytes);
        return bytes;
    }

    // ---- odd methods, URLs, content types --------------------------------------------------------------------

    private FuzzRequest OddRequest(ClusterState state)
    {
        var (path, body) = AnyValidBody(state);
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString(Raw));
        var name = ServiceName(state);
        return _r.Next(8) switch
        {
            0 => new FuzzRequest(Pick(new[] { "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "FOO", "get", "post" }), Pick(new[] { path, "/v1/state", "/v1/info", "/v1/services/" + name }), "application/json", bytes, "odd method"),
            1 => new FuzzRequest("POST", path, Pick(ContentTypes), bytes, "content type"),
            2 => new FuzzRequest("POST", path, null, bytes, "no content type"),
            3 => new FuzzRequest(Pick(new[] { "GET", "DELETE", "POST" }), OddPath(name), "application/json", Chance(50) ? bytes : null, "odd path"),
            4 => new FuzzRequest("DELETE", "/v1/" + Pick(new[] { "services/", "tasks/" }) + Pick(Nasty).Replace("\n", "%0A", StringComparison.Ordinal).Replace("\0", "%00", StringComparison.Ordinal), null, null, "delete nasty name"),
            5 => new FuzzRequest("DELETE", "/v1/" + Pick(new[] { "services/", "tasks/" }) + Uri.EscapeDataString(Pick(Nasty)), null, null, "delete escaped nasty name"),
            6 => new FuzzRequest("GET", "/v1/services/" + Uri.EscapeDataString(Pick(Nasty)), null, null, "inspect nasty name"),
            _ => new FuzzRequest("POST", path, "application/json", null, "no body"),
        };
    }

    private string OddPath(string name) => _r.Next(16) switch
    {
        0 => "/v1//services",
        1 => "/v1/services/",
        2 => "/V1/SERVICES/" + name.ToUpperInvariant(),
        3 => "/v1/%73ervices",
        4 => "/v1/services/" + name + "/..",
        5 => "/v1/tasks/../services",
        6 => "/v1/services/%2e%2e/%2e%2e/v1/state",
        7 => "/v1/services/" + name + "%2F..",
        8 => "/v1/services/" + new string('a', _r.Next(100, 9000)),
        9 => "/" + new string('/', 1000) + "v1/state",
        10 => "/v1/services/" + name + "?x=" + new string('%', 10),
        11 => "/v1/tasks?service=" + Uri.EscapeDataString(Pick(Nasty)) + "&node=%ff%fe",
        12 => "/v1/services/%00",
        13 => "/v1/services/%C0%AE%C0%AE",
        14 => "/v1/state;jsessionid=1",
        _ => "/v2/services",
    };

    private FuzzRequest Reads(ClusterState state)
    {
        var name = ServiceName(state);
        var path = _r.Next(9) switch
        {
            0 => "/v1/info",
            1 => "/v1/state",
            2 => "/v1/services",
            3 => "/v1/services/" + Uri.EscapeDataString(name),
            4 => "/v1/tasks?service=" + Uri.EscapeDataString(name) + (Chance(50) ? "&node=" + NodeName(state) : ""),
            5 => "/v1/nodes",
            6 => "/v1/networks",
            7 => "/metrics",
            _ => WatchPath(state),
        };
        return new FuzzRequest("GET", path, null, null, "read")
        {
            Deadline = path.StartsWith("/v1/watch", StringComparison.Ordinal) ? TimeSpan.FromSeconds(6) : TimeSpan.FromSeconds(5),
        };
    }

    /// <summary>Watches that block only briefly: at the current revision the timeout is small or invalid.</summary>
    private string WatchPath(ClusterState state)
    {
        var after = Pick(new[] { "0", state.Revision.ToString(CultureInfo.InvariantCulture), (state.Revision + 1000).ToString(CultureInfo.InvariantCulture), "-1", "abc", "99999999999999999999", "", "1e3", "%00" });
        var timeout = Pick(new[] { "0", "1", "50", "-5", "x", "99999999999999999999", "1.5" });
        return $"/v1/watch?after={after}&timeoutMs={timeout}";
    }

    // ---- raw HTTP -------------------------------------------------------------------------------------------

    private FuzzRequest RawHttp(ClusterState state)
    {
        var (path, body) = AnyValidBody(state);
        var json = body.ToJsonString(Raw);
        var length = Encoding.UTF8.GetByteCount(json);
        var text = _r.Next(12) switch
        {
            0 => $"POST {path} HTTP/1.1\r\nHost: mesh\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{json}",
            1 => $"POST {path} HTTP/1.1\r\nHost: mesh\r\nContent-Length: {length + 50}\r\nConnection: close\r\n\r\n{json}{new string('}', 50)}", // complete, so nothing waits
            2 => $"POST {path} HTTP/1.1\r\nHost: mesh\r\nContent-Length: {Math.Max(0, length - 5)}\r\nConnection: close\r\n\r\n{json}",
            3 => $"POST {path} HTTP/1.1\r\nHost: mesh\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{length:x}\r\n{json}\r\n0\r\n\r\n",
            4 => $"POST {path} HTTP/1.1\r\nHost: mesh\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\nzz\r\n{json}\r\n",
            5 => $"GET /v1/services/a b HTTP/1.1\r\nHost: mesh\r\nConnection: close\r\n\r\n",
            6 => $"GET /v1/state\u0000 HTTP/1.1\r\nHost: mesh\r\nConnection: close\r\n\r\n",
            7 => $"GET /v1/state HTTP/1.1\r\nHost: mesh\r\nX-Long: {new string('a', 40_000)}\r\nConnection: close\r\n\r\n",
            8 => $"GET /v1/state HTTP/9.9\r\nHost: mesh\r\nConnection: close\r\n\r\n",
            9 => $"POST {path} HTTP/1.0\r\nContent-Length: {length}\r\n\r\n{json}", // 1.0: the server closes after it
            10 => $"GET /{new string('v', 20_000)} HTTP/1.1\r\nHost: mesh\r\nConnection: close\r\n\r\n",
            _ => $"DELETE /v1/services/{ServiceName(state)} HTTP/1.1\r\nHost: mesh\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        };
        // The oracle judges by method and path: take them from the request line as written.
        var line = text.Split("\r\n")[0].Split(' ');
        return new FuzzRequest(line[0], line.Length > 1 ? line[1] : "", null, null, "raw http") { Raw = Encoding.UTF8.GetBytes(text) };
    }
}
