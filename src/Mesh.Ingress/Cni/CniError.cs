namespace Mesh.Ingress.Cni;

/// <summary>
/// The error codes of the CNI spec (1.0.0 "Error", 1.1.0 adds 50/51 for STATUS), and Mesh's own above 100 as the spec
/// reserves them for plugins.
/// </summary>
public enum CniErrorCode
{
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnvironment = 4,
    IoFailure = 5,
    DecodingFailure = 6,
    InvalidConfig = 7,
    TryAgainLater = 11,

    /// <summary>STATUS: the plugin cannot serve ADD now (1.1.0).</summary>
    PluginNotAvailable = 50,

    /// <summary>The daemon refused the registration (the service does not exist, no address is left, …).</summary>
    RegistrationRefused = 100,

    /// <summary>CHECK: a leg of the container is missing or not as ADD made it.</summary>
    LegMismatch = 101,

    /// <summary>A kernel operation (creating or configuring a leg) failed.</summary>
    LinkFailure = 102,

    Internal = 999,
}

/// <summary>A failure the plugin reports as CNI error JSON: the code, a one-line message and optional details.</summary>
public sealed class CniException(CniErrorCode code, string message, string? details = null) : Exception(message)
{
    public CniErrorCode Code { get; } = code;

    public string? Details { get; } = details;
}
