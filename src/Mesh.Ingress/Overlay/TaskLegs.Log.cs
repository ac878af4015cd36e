using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Overlay;

public sealed partial class TaskLegs
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Removed leg {Leg} from bridge {Bridge}: its task's namespace {Netns} was deleted (the kernel may keep the namespace a while, the leg must not answer for its address meanwhile)")]
    private partial void LogLegRemoved(string leg, string bridge, string netns);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Leg {Leg} of the deleted task namespace {Netns} could not be removed (tried again next pass): {Reason}")]
    private partial void LogLegRemovalFailed(string leg, string netns, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Leg {Leg} (ifindex {Index}) recorded for the deleted task namespace {Netns} is no longer its leg on a Mesh bridge: left alone")]
    private partial void LogLegNotOurs(string leg, int index, string netns);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The legs of task namespace {Netns} could not be read (tried again next time): {Reason}")]
    private partial void LogNamespaceUnreadable(string netns, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Leg {Leg} on bridge {Bridge} recorded for task namespace {Netns} as the kernel reported it")]
    private partial void LogLegRecorded(string leg, string bridge, string netns);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Link notifications were lost (receive buffer overrun, or a failed read): the links and the {Count} known task namespaces still there are read again, and the ones gone get no more legs from notifications")]
    private partial void LogNotificationsLost(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading link notifications failed (the next notification or pass tries again): {Reason}")]
    private partial void LogWatchFailed(string reason);
}
