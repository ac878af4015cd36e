using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Http;

/// <summary>
/// The daemon's logger factory for the L7 entry's web host, without ASP.NET Core's per-request diagnostics logger.
/// Hosting starts an <c>Activity</c> and a log scope for every request whenever that logger is enabled at any level,
/// even though the daemon writes nothing of it (the category is filtered to Warning and it logs requests at
/// Information): a null logger turns both off. Everything else (Kestrel's, YARP's warnings) goes to the daemon's log.
/// </summary>
public sealed class WithoutRequestLogging(ILoggerFactory inner) : ILoggerFactory
{
    /// <summary>The category whose logger decides whether hosting creates a request's activity and scope.</summary>
    public const string RequestDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

    public ILogger CreateLogger(string categoryName) =>
        categoryName == RequestDiagnostics ? NullLogger.Instance : inner.CreateLogger(categoryName);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    /// <summary>The daemon's factory is the daemon's to dispose.</summary>
    public void Dispose()
    {
    }
}
