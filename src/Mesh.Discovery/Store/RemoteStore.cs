using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Mesh.Discovery.Model;

namespace Mesh.Discovery.Store;

/// <summary>
/// The embedded store as seen from a daemon that joined another one (<c>--join URL</c>): every call is
/// one request to the holder's HTTP API, and the holder's errors come back as the same exception types.
/// </summary>
public sealed class RemoteStore(HttpClient http) : IClusterStore
{
    public Task<ClusterState> GetStateAsync(CancellationToken cancellationToken = default) =>
        SendAsync<ClusterState>(HttpMethod.Get, "v1/state", null, cancellationToken);

    public Task<OverlayNetwork> CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync<OverlayNetwork>(HttpMethod.Post, "v1/networks", spec, cancellationToken);

    public Task<ClusterNode> RegisterNodeAsync(NodeSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync<ClusterNode>(HttpMethod.Post, "v1/nodes", spec, cancellationToken);

    public Task<ClusterService> CreateServiceAsync(ServiceSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync<ClusterService>(HttpMethod.Post, "v1/services", spec, cancellationToken);

    public Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/services/{Uri.EscapeDataString(name)}", null, cancellationToken);

    public Task<ServiceTask> AddTaskAsync(TaskSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync<ServiceTask>(HttpMethod.Post, "v1/tasks", spec, cancellationToken);

    public Task RemoveTaskAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/tasks/{Uri.EscapeDataString(name)}", null, cancellationToken);

    public Task<WatchResult> WatchAsync(long afterRevision, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        SendAsync<WatchResult>(HttpMethod.Get, FormattableString.Invariant($"v1/watch?after={afterRevision}&timeoutMs={(long)timeout.TotalMilliseconds}"), null, cancellationToken);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: MeshJson.Options);
        }

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (TlsFailure(e) is { } tls)
        {
            // Say what to fix: a refused handshake looks like a dead server unless the message names TLS.
            throw new StoreUnavailableException(
                $"TLS with the store at {http.BaseAddress} failed: {tls} (both ends need certificates of the same cluster CA: --tls-cert, --tls-key, --tls-ca)", e);
        }
        catch (HttpRequestException e)
        {
            throw new StoreUnavailableException($"store at {http.BaseAddress} is unreachable: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StoreUnavailableException($"store at {http.BaseAddress} did not answer in time", e);
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                if (response.StatusCode == HttpStatusCode.NoContent || typeof(T) == typeof(object))
                {
                    return default!;
                }

                return await response.Content.ReadFromJsonAsync<T>(MeshJson.Options, cancellationToken).ConfigureAwait(false)
                    ?? throw new StoreUnavailableException($"store at {http.BaseAddress} sent an empty answer to {method} {path}");
            }

            ApiError? error = null;
            try
            {
                error = await response.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options, cancellationToken).ConfigureAwait(false);
            }
            catch (JsonException)
            {
                // not one of ours: fall through with the status code
            }

            var message = error?.Error ?? $"{(int)response.StatusCode} {response.ReasonPhrase}";
            throw response.StatusCode switch
            {
                HttpStatusCode.BadRequest => new ValidationException(error?.Field ?? "request", StripField(message, error?.Field)),
                HttpStatusCode.NotFound => new NotFoundException(message),
                HttpStatusCode.Conflict => new ConflictException(message),
                HttpStatusCode.Unauthorized => new StoreUnavailableException($"store at {http.BaseAddress} refused the request (401 Unauthorized): {message} (--api-token-file must hold the holder's token)"),
                _ => new StoreUnavailableException($"store at {http.BaseAddress}: {message}"),
            };
        }
    }

    /// <summary>The messages of a failed request when TLS is what failed (a handshake refused either way, a certificate not trusted).</summary>
    private string? TlsFailure(HttpRequestException e)
    {
        var chain = new List<Exception>();
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            chain.Add(inner);
        }

        var messages = string.Join(": ", chain.Select(x => x.Message).Distinct());
        if (e.HttpRequestError == HttpRequestError.SecureConnectionError || chain.Any(x => x is System.Security.Authentication.AuthenticationException))
        {
            return messages;
        }

        // With TLS 1.3 the server checks our certificate after the handshake has completed on our side: a refusal
        // then shows up as a connection closed before any answer.
        return http.BaseAddress?.Scheme == Uri.UriSchemeHttps && e.HttpRequestError == HttpRequestError.ResponseEnded
            ? $"the server closed the connection before answering, which over TLS means it refused our client certificate ({messages})"
            : null;
    }

    private static string StripField(string message, string? field) =>
        field is not null && message.StartsWith(field + ": ", StringComparison.Ordinal) ? message[(field.Length + 2)..] : message;
}
