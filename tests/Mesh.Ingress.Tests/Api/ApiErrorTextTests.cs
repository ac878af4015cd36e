using System.Text;
using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Api;

/// <summary>
/// Issue 13: API errors showed .NET type names ("could not be converted to System.Int32", "any .NET member contained in
/// type 'Mesh.Discovery.Store.ServiceSpec'") and \u0027 for every apostrophe. They are plain sentences, written as read.
/// </summary>
public sealed class ApiErrorTextTests : IAsyncLifetime
{
    private InMemoryApi _api = null!;

    private EmbeddedStore _store => _api.Store;

    private HttpClient _http => _api.Http;

    public async Task InitializeAsync() => _api = await InMemoryApi.StartAsync();

    public async Task DisposeAsync() => await _api.DisposeAsync();

    public static TheoryData<string, string, string, string> Bodies => new()
    {
        { "/v1/services", "{\"name\":42}", "name", "has the wrong JSON type: expected a string" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":[{\"published\":\"8080\",\"target\":80}]}", "ports[0].published", "has the wrong JSON type: expected an integer" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":[{\"published\":81,\"target\":80,\"protocol\":\"sctp\"}]}", "ports[0].protocol", "has the wrong JSON type: expected one of tcp, udp" },
        { "/v1/services", "{\"name\":\"x\",\"mode\":\"round-robin\"}", "mode", "expected one of vip, dnsrr" },
        { "/v1/services", "{\"name\":\"x\",\"aliases\":\"one\"}", "aliases", "expected an array" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":{}}", "ports", "expected an array" },
        { "/v1/services", "{\"name\":\"x\",\"unknown\":1}", "unknown", "unknown field 'unknown'" },
        { "/v1/tasks", "{\"service\":\"web\",\"node\":\"n1\",\"addresses\":[]}", "addresses", "expected an object" },
        { "/v1/services", "{\"name\":\"x\",\"ports\":[{\"target\":80}]}", "ports[0]", "missing required field" },
        { "/v1/services", "{\"name\":\"x\",", "body", "malformed JSON" },
        { "/v1/services", "{\"name\":\"x\",}", "body", "malformed JSON" },
        { "/v1/services", "{\"name\":\"x\"} {}", "body", "malformed JSON" },
        { "/v1/services", "'x'", "body", "malformed JSON: ''' is an invalid start of a value (line 1, byte 1)" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task Rejected_bodies_get_a_plain_sentence_naming_the_field(string path, string body, string field, string expected)
    {
        using var response = await _http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var raw = await response.Content.ReadAsStringAsync();

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var error = JsonSerializer.Deserialize<ApiError>(raw, MeshJson.Options)!;
        Assert.Equal(field, error.Field);
        Assert.True(error.Error.Contains(expected, StringComparison.Ordinal), $"expected \"{expected}\" in: {error.Error}");
        AssertPlain(raw);
    }

    [Fact]
    public async Task Apostrophes_are_written_as_apostrophes_and_json_syntax_is_still_escaped()
    {
        using var response = await _http.DeleteAsync("/v1/services/nosuch");
        var raw = await response.Content.ReadAsStringAsync();

        Assert.Equal(404, (int)response.StatusCode);
        Assert.Contains("'nosuch'", raw, StringComparison.Ordinal);
        AssertPlain(raw);

        // A quote and a backslash from the client still come back as valid JSON.
        using var tricky = await _http.PostAsync("/v1/services", new StringContent("{\"name\":\"a\\\"b\\\\c\"}", Encoding.UTF8, "application/json"));
        var text = await tricky.Content.ReadAsStringAsync();
        Assert.Contains("a\"b\\c", JsonSerializer.Deserialize<ApiError>(text, MeshJson.Options)!.Error, StringComparison.Ordinal);
    }

    /// <summary>The CLI's view (through the same client the CLI uses): the message it prints has no type names either.</summary>
    [Fact]
    public async Task The_cli_client_gets_the_same_plain_message()
    {
        var remote = new RemoteStore(_http);
        var e = await Assert.ThrowsAsync<ValidationException>(() => remote.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Networks = ["it's-missing"] }));
        AssertPlain(e.Message);
    }

    private static void AssertPlain(string text)
    {
        foreach (var leak in new[] { "System.", "Mesh.", ".NET", "\\u0027", "LineNumber", "BytePositionInLine", "Exception", "`1" })
        {
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }
    }
}
