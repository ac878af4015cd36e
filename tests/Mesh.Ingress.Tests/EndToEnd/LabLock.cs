namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>flock(2) on /tmp/mesh-lab.lock (.NET takes it for FileShare.None), the same lock `flock /tmp/mesh-lab.lock` takes.</summary>
internal static class LabLock
{
    public static async Task<FileStream> AcquireAsync()
    {
        var deadline = DateTime.UtcNow.AddMinutes(15);
        while (true)
        {
            try
            {
                return new FileStream("/tmp/mesh-lab.lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }
}
