using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Overlay;

/// <summary>
/// A throw-away namespace standing for a node's own, for the overlays' kernel tests: an underlay (a veth pair, as no
/// dummy module is on every host) holding the advertise address <paramref name="local"/>/24, up. Named by the caller,
/// never mesh-* (`lab down` in parallel tests deletes those).
/// </summary>
internal sealed class ScratchNode(string name, string local)
{
    public string Name => name;

    public string Local => local;

    public string NetnsPath => $"/var/run/netns/{name}";

    public async Task CreateAsync()
    {
        await Shell.RunAsync("ip", "netns", "del", name);
        await Shell.CheckedAsync("ip", "netns", "add", name);
        await Shell.CheckedAsync("ip", "-n", name, "link", "add", "under0", "type", "veth", "peer", "name", "under1");
        await Shell.CheckedAsync("ip", "-n", name, "addr", "add", $"{local}/24", "dev", "under0");
        await Shell.CheckedAsync("ip", "-n", name, "link", "set", "under0", "up");
    }

    public async Task DeleteAsync() => await Shell.RunAsync("ip", "netns", "del", name);
}
