namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>
/// The transport itself: a server may answer a malformed request and close the connection while the client is still
/// writing a large body. That is a valid answer, not a lost one (CI saw "Error while copying content to a stream" for
/// a 200 KB body with <c>Content-Type: \0</c>, which Kestrel rejects at the header).
/// </summary>
public sealed class FuzzTransportTests
{
    [Fact]
    public async Task A_connection_closed_mid_body_is_an_answer_not_a_lost_request()
    {
        await using var daemon = await FuzzDaemon.StartAsync(TimeSpan.FromSeconds(30));
        using var transport = new FuzzTransport(daemon.SocketPath);
        var body = System.Text.Encoding.ASCII.GetBytes(new string('[', 2_000_000));
        var statuses = new HashSet<int>();
        for (var i = 0; i < 20; i++)
        {
            var response = await transport.SendAsync(new FuzzRequest("POST", "/v1/nodes", "\0", body, "test: invalid header, large body"));
            statuses.Add(response.Status);
        }

        // Kestrel's 400 for the header every time, whether or not the body was all written: never an exception.
        Assert.Equal([400], statuses);
        var raw = System.Text.Encoding.ASCII.GetBytes("POST /v1/nodes HTTP/1.1\r\nHost: mesh\r\nContent-Type: \0\r\nContent-Length: 2000000\r\n\r\n")
            .Concat(body).ToArray();
        var rawResponse = await transport.SendAsync(new FuzzRequest("POST", "/v1/nodes", null, null, "test: raw") { Raw = raw });
        Assert.Equal(400, rawResponse.Status); // the raw path reads the answer even after the server stopped reading
    }
}
