namespace Mesh.Ingress.Cni;

/// <summary>CNI_COMMAND: the operations of spec 1.0.0, plus STATUS and GC of 1.1.0.</summary>
public enum CniCommand
{
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}
