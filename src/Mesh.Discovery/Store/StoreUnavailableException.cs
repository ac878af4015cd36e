namespace Mesh.Discovery.Store;

/// <summary>The store could not be reached or did not answer; the request may be retried.</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
