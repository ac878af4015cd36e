namespace Mesh.Ingress.Ui;

/// <summary>A fixed number of live-stream slots: taken when a stream starts, given back when it ends, however it ends.</summary>
public sealed class SseClientSlots(int max)
{
    private int _used;

    public int Max => max;

    public int Used => Volatile.Read(ref _used);

    public bool TryTake()
    {
        while (true)
        {
            var used = Volatile.Read(ref _used);
            if (used >= max)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _used, used + 1, used) == used)
            {
                return true;
            }
        }
    }

    public void Release() => Interlocked.Decrement(ref _used);
}
