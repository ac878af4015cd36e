using System.Text.Json.Serialization;

namespace Mesh.Discovery.Model;

[JsonConverter(typeof(JsonStringEnumConverter<TaskState>))]
public enum TaskState
{
    Running,

    /// <summary>Still registered but must receive no new connections (weight 0 / removed from backend sets).</summary>
    Draining,
}
