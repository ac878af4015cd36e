namespace Mesh.Discovery.Model;

/// <summary>Bad input from a user or a runtime: names the offending field. Nothing was changed.</summary>
public sealed class ValidationException(string field, string message) : Exception($"{field}: {message}")
{
    public string Field { get; } = field;
}

/// <summary>The request conflicts with existing state (duplicate name, port already published, ...).</summary>
public sealed class ConflictException(string message) : Exception(message);

/// <summary>The named object does not exist.</summary>
public sealed class NotFoundException(string message) : Exception(message);
