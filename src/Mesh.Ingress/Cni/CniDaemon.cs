using System.Net.Http.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Cli;

namespace Mesh.Ingress.Cni;

/// <summary>
/// The plugin's view of the local daemon (its unix API socket): which node this is, the cluster's state, and task
/// registration. Failures become CNI errors: an unreachable daemon is "try again later" (11), a refusal names why (100).
/// </summary>
public sealed class CniDaemon : IDisposable
{
    /// <summary>A runtime waits for the plugin; a daemon that does not answer within this is reported, not waited for.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    private readonly HttpClient _http;
    private readonly RemoteStore _store;

    public CniDaemon(string api)
    {
        _http = ApiClientFactory.Create(api, RequestTimeout);
        _store = new RemoteStore(_http, endpoint: api);
    }

    public Task<string> NodeAsync(CancellationToken ct) => Call(async () =>
        (await _http.GetFromJsonAsync<NodeInfo>("v1/info", MeshJson.Options, ct))?.Node ?? throw new StoreUnavailableException("the daemon's /v1/info said nothing"));

    public Task<ClusterState> StateAsync(CancellationToken ct) => Call(() => _store.GetStateAsync(ct));

    public Task<ServiceTask> AddTaskAsync(TaskSpec spec, CancellationToken ct) => Call(() => _store.AddTaskAsync(spec, ct));

    /// <summary>Removes a task; one already gone is success (DEL is idempotent).</summary>
    public Task RemoveTaskAsync(string name, CancellationToken ct) => Call(async () =>
    {
        try
        {
            await _store.RemoveTaskAsync(name, ct);
        }
        catch (NotFoundException)
        {
        }

        return true;
    });

    public void Dispose() => _http.Dispose();

    private static async Task<T> Call<T>(Func<Task<T>> request)
    {
        try
        {
            return await request();
        }
        catch (Exception e) when (e is StoreUnavailableException or HttpRequestException or IOException or TaskCanceledException)
        {
            throw new CniException(CniErrorCode.TryAgainLater, "the Mesh daemon does not answer: is 'mesh daemon' running on this host?", e.Message);
        }
        catch (Exception e) when (e is ValidationException or ConflictException or NotFoundException)
        {
            throw new CniException(CniErrorCode.RegistrationRefused, $"the Mesh daemon refused: {e.Message}");
        }
    }
}
