namespace Mesh.Discovery.Model;

public enum TaskState
{
    Running,

    /// <summary>Still registered but must receive no new connections (weight 0 / removed from backend sets).</summary>
    Draining,
}
