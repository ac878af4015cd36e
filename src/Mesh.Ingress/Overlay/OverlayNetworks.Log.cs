using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Overlay;

public sealed partial class OverlayNetworks
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "Overlay change: {Change}")]
    private partial void LogChange(string change);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Overlay removal failed: {Change}: {Reason}")]
    private partial void LogRemovalFailed(string change, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Overlays converged with {Changes} changes: {Networks} networks, {Peers} remote endpoints")]
    private partial void LogConverged(int changes, int networks, int peers);
}
