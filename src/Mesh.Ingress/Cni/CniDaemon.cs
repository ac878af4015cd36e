using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Cni;

/// <summary>
/// The plugin's view of the local daemon (its unix API socket): which node this is, the cluster's state, and task
/// registration. Failures become CNI errors: an unreachable daemon is "try again later" (11), a refusal names why (100).
/// The JSON is read with <see cref="JsonDocument"/> into the model by hand, not by the reflection serializer: building
/// its metadata for the whole cluster model cost most of a cold ADD (over a second on a loaded 2-core machine),
/// and the plugin is a fresh process every time. What is read is validated as the store validates it. The client is
/// built here rather than by the CLI's ApiClientFactory: the native plugin (src/Mesh.Cni) compiles this file without
/// the CLI, its TLS and its token handling, which a unix socket on the same host does not need.
/// </summary>
public sealed class CniDaemon : IDisposable
{
    /// <summary>A runtime waits for the plugin; a daemon that does not answer within this is reported, not waited for.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    private readonly HttpClient _http;

    /// <param name="api"><c>unix:///path</c>, as <see cref="CniNetworkConfig"/> validated it.</param>
    public CniDaemon(string api)
    {
        var socketPath = new Uri(api).AbsolutePath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    throw new IOException(e.SocketErrorCode switch
                    {
                        SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported => $"no socket at {socketPath}",
                        SocketError.ConnectionRefused => $"nothing listens on {socketPath}",
                        _ => $"cannot connect to {socketPath}: {e.Message}",
                    }, e);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://mesh/"), Timeout = RequestTimeout };
    }

    public async Task<string> NodeAsync(CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, "v1/info", null, ct);
        return Validate.Label("node", doc!.RootElement.GetProperty("node").GetString());
    }

    public async Task<ClusterState> StateAsync(CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, "v1/state", null, ct);
        var root = doc!.RootElement;
        return Read(() => new ClusterState
        {
            Networks = [.. root.GetProperty("networks").EnumerateArray().Select(n => new OverlayNetwork(
                Validate.Label("networks", n.GetProperty("name").GetString()), Validate.Cidr("subnet", n.GetProperty("subnet").GetString()).ToString(), n.GetProperty("vni").GetInt32()))],
            Services = [.. root.GetProperty("services").EnumerateArray().Select(s => new ClusterService
            {
                Name = Validate.Label("services", s.GetProperty("name").GetString()),
                Ports = [.. s.GetProperty("ports").EnumerateArray().Select(p => new PublishedPort(p.GetProperty("published").GetInt32(), p.GetProperty("target").GetInt32()))],
                Networks = [.. s.GetProperty("networks").EnumerateArray().Select(n => Validate.Label("networks", n.GetString()))],
            })],
            Tasks = [.. root.GetProperty("tasks").EnumerateArray().Select(ReadTask)],
        });
    }

    public async Task<ServiceTask> AddTaskAsync(string service, string node, string netns, string containerId, CancellationToken ct)
    {
        var body = new MemoryStream();
        using (var w = new Utf8JsonWriter(body))
        {
            w.WriteStartObject();
            w.WriteString("service", service);
            w.WriteString("node", node);
            w.WriteString("netnsPath", netns);
            w.WriteString("containerId", containerId);
            // ADD runs before the container's process starts: the task's node routes to it once its port answers.
            w.WriteString("state", "starting");
            w.WriteEndObject();
        }

        using var doc = await SendAsync(HttpMethod.Post, "v1/tasks", body.ToArray(), ct);
        return Read(() => ReadTask(doc!.RootElement));
    }

    /// <summary>Removes a task; one already gone is success (DEL is idempotent).</summary>
    public async Task RemoveTaskAsync(string name, CancellationToken ct)
    {
        try
        {
            using var _ = await SendAsync(HttpMethod.Delete, $"v1/tasks/{Uri.EscapeDataString(name)}", null, ct);
        }
        catch (CniException e) when (e.Details == NotFound)
        {
        }
    }

    public void Dispose() => _http.Dispose();

    private const string NotFound = "404";

    private static ServiceTask ReadTask(JsonElement t) => new()
    {
        Name = Validate.DottedName("name", t.GetProperty("name").GetString()),
        Service = Validate.Label("service", t.GetProperty("service").GetString()),
        Node = Validate.Label("node", t.GetProperty("node").GetString()),
        Addresses = t.GetProperty("addresses").EnumerateObject().ToDictionary(a => Validate.Label("addresses", a.Name), a => Validate.IPv4($"addresses.{a.Name}", a.Value.GetString()).ToString(), StringComparer.Ordinal),
        NetnsPath = t.TryGetProperty("netnsPath", out var n) && n.ValueKind == JsonValueKind.String ? TaskPaths.NetnsPath("netnsPath", n.GetString()) : null,
        ContainerId = t.TryGetProperty("containerId", out var c) && c.ValueKind == JsonValueKind.String ? Validate.ContainerId("containerId", c.GetString()) : null,
    };

    private static T Read<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or ValidationException)
        {
            throw new CniException(CniErrorCode.Internal, "the Mesh daemon's answer is not what this plugin understands (are mesh and mesh-cni the same version?)", e.Message);
        }
    }

    private async Task<JsonDocument?> SendAsync(HttpMethod method, string path, byte[]? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new("application/json");
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
            throw new CniException(CniErrorCode.TryAgainLater, "the Mesh daemon does not answer: is 'mesh daemon' running on this host?", e.Message);
        }

        using (response)
        {
            var bytes = await response.Content.ReadAsByteArrayAsync(ct);
            if (response.IsSuccessStatusCode)
            {
                return bytes.Length == 0 ? null : Read(() => JsonDocument.Parse(bytes));
            }

            var message = ErrorText(bytes) ?? response.ReasonPhrase ?? "";
            throw response.StatusCode switch
            {
                HttpStatusCode.ServiceUnavailable => new CniException(CniErrorCode.TryAgainLater, $"the Mesh daemon cannot reach its store: {message}"),
                HttpStatusCode.NotFound => new CniException(CniErrorCode.RegistrationRefused, $"the Mesh daemon refused: {message}", NotFound),
                _ => new CniException(CniErrorCode.RegistrationRefused, $"the Mesh daemon refused: {message}"),
            };
        }
    }

    /// <summary>The API's error text (<c>{"error": …}</c>), bounded and printable; null when the body is not one.</summary>
    private static string? ErrorText(byte[] body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var e) && e.GetString() is { } s
                ? Validate.Printable(s.Length > 1000 ? s[..1000] : s)
                : null;
        }
        catch (JsonException)
        {
            return Validate.Printable(Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 200))));
        }
    }
}
