using System.Net.Sockets;

namespace Mesh.LoadTests.Core;

/// <summary>Maps exceptions to short, countable error kinds without per-request string building where possible.</summary>
public static class ErrorKinds
{
    public const string Timeout = "timeout";
    private static readonly string[] StatusCodes = Enumerable.Range(0, 1000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Cached decimal strings for status codes 0..999.</summary>
    public static string Status(int code) => (uint)code < 1000 ? StatusCodes[code] : code.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static string Classify(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case TimeoutException:
                    return Timeout;
                case SocketException se:
                    return "socket:" + se.SocketErrorCode;
            }
        }
        return e switch
        {
            OperationCanceledException => Timeout,
            HttpRequestException h => "http:" + h.HttpRequestError,
            IOException => "io:" + (e.InnerException?.GetType().Name ?? e.GetType().Name),
            _ => e.GetType().Name,
        };
    }
}
