using System.Globalization;
using System.Text;
using System.Text.Json;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Cni;

/// <summary>
/// The kernel side of the plugin: creates, checks and deletes a container's legs. One <c>ip -batch</c> in the runtime's
/// namespace (veth pairs, peers moved into the container, host ends on their bridges) and one inside the container
/// (addresses, up): two processes per ADD whatever the number of networks. Every name and address in the batch text
/// is validated before (interface names, canonical netns paths, IPv4 addresses), so no token can split or inject.
/// </summary>
public sealed class CniLinks(ICommandRunner runner)
{
    /// <summary>How long ADD waits for the daemon to make a network's bridge (it does once the task is registered).</summary>
    public static readonly TimeSpan BridgeWait = TimeSpan.FromSeconds(10);

    public async Task AddAsync(string netns, IReadOnlyList<CniLeg> legs, int mtu, CancellationToken ct)
    {
        // The daemon carries a network on its node only while a task of the node is on it: for the node's first
        // container on a network, the bridge appears once the daemon has seen the task this ADD just registered.
        foreach (var bridge in legs.Select(l => l.Bridge).Distinct(StringComparer.Ordinal))
        {
            await WaitForBridgeAsync(bridge, ct);
        }

        var m = mtu.ToString(CultureInfo.InvariantCulture);
        var host = new StringBuilder();
        foreach (var leg in legs)
        {
            host.Append(CultureInfo.InvariantCulture, $"link add {leg.HostInterface} mtu {m} type veth peer name {leg.ContainerInterface} address {leg.Mac} mtu {m} netns {netns}\n");
            host.Append(CultureInfo.InvariantCulture, $"link set {leg.HostInterface} master {leg.Bridge} up\n");
        }

        await Batch(NetworkNamespacePath.Current, host.ToString(), ct);
        var inside = new StringBuilder("link set lo up\n");
        foreach (var leg in legs)
        {
            inside.Append(CultureInfo.InvariantCulture, $"addr add {leg.Cidr} dev {leg.ContainerInterface}\n");
            inside.Append(CultureInfo.InvariantCulture, $"link set {leg.ContainerInterface} up\n");
        }

        await Batch(new NetworkNamespacePath(netns), inside.ToString(), ct);
    }

    private async Task WaitForBridgeAsync(string bridge, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while ((await runner.RunInAsync(NetworkNamespacePath.Current, "ip", ["link", "show", "dev", bridge], null, ct)).ExitCode != 0)
        {
            if (clock.Elapsed > BridgeWait)
            {
                throw new CniException(CniErrorCode.TryAgainLater, string.Create(CultureInfo.InvariantCulture, $"the Mesh daemon has not made the bridge {bridge} within {BridgeWait.TotalSeconds:0} s"), $"no link {bridge} in this namespace");
            }

            await Task.Delay(50, ct);
        }
    }

    /// <summary>
    /// Deletes every host end named for the container (the peers go with them); none left is success. Only veth
    /// devices: a device of another kind that happens to carry the name is not ours to delete.
    /// </summary>
    public async Task DeleteAsync(string containerId, CancellationToken ct)
    {
        var names = await HostEndsAsync(containerId, ct);
        if (names.Count > 0)
        {
            await Batch(NetworkNamespacePath.Current, string.Concat(names.Select(n => $"link del {n}\n")), ct);
        }
    }

    public async Task<IReadOnlyList<string>> HostEndsAsync(string containerId, CancellationToken ct)
    {
        var prefix = CniLeg.HostPrefix(containerId);
        using var links = JsonDocument.Parse(await Run(NetworkNamespacePath.Current, ["-j", "-d", "link", "show", "type", "veth"], null, ct));
        return links.RootElement.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!)
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.Length > prefix.Length && n.AsSpan(prefix.Length).IndexOfAnyExceptInRange('0', '9') < 0)
            .ToArray();
    }

    /// <summary>What is wrong with the legs, one line each; empty when every leg is as ADD made it.</summary>
    public async Task<IReadOnlyList<string>> CheckAsync(string netns, IReadOnlyList<CniLeg> legs, CancellationToken ct)
    {
        var problems = new List<string>();
        using var host = JsonDocument.Parse(await Run(NetworkNamespacePath.Current, ["-j", "link", "show"], null, ct));
        var hostLinks = host.RootElement.EnumerateArray().ToDictionary(l => l.GetProperty("ifname").GetString()!, StringComparer.Ordinal);
        if (!File.Exists(netns))
        {
            return [$"the container's namespace {netns} does not exist"];
        }

        using var inside = JsonDocument.Parse(await Run(new NetworkNamespacePath(netns), ["-j", "addr", "show"], null, ct));
        var insideLinks = inside.RootElement.EnumerateArray().ToDictionary(l => l.GetProperty("ifname").GetString()!, StringComparer.Ordinal);
        foreach (var leg in legs)
        {
            if (!hostLinks.TryGetValue(leg.HostInterface, out var h))
            {
                problems.Add($"host end {leg.HostInterface} of {leg.Network} is missing");
            }
            else if (!h.TryGetProperty("master", out var master) || master.GetString() != leg.Bridge)
            {
                problems.Add($"host end {leg.HostInterface} of {leg.Network} is not on bridge {leg.Bridge}");
            }

            if (!insideLinks.TryGetValue(leg.ContainerInterface, out var c))
            {
                problems.Add($"{leg.ContainerInterface} ({leg.Network}) is missing in the container");
                continue;
            }

            if (c.GetProperty("address").GetString() != leg.Mac)
            {
                problems.Add($"{leg.ContainerInterface} has MAC {c.GetProperty("address").GetString()}, not {leg.Mac}");
            }

            var addresses = c.GetProperty("addr_info").EnumerateArray()
                .Select(a => string.Create(CultureInfo.InvariantCulture, $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}"));
            if (!addresses.Contains(leg.Cidr, StringComparer.Ordinal))
            {
                problems.Add($"{leg.ContainerInterface} lacks {leg.Cidr}");
            }
        }

        return problems;
    }

    private async Task Batch(NetworkNamespacePath where, string commands, CancellationToken ct) =>
        await Run(where, ["-batch", "-"], commands, ct);

    private async Task<string> Run(NetworkNamespacePath where, IReadOnlyList<string> arguments, string? input, CancellationToken ct)
    {
        try
        {
            return await runner.RunCheckedInAsync(where, "ip", arguments, input, ct);
        }
        catch (CommandFailedException e)
        {
            throw new CniException(CniErrorCode.LinkFailure, $"'ip {string.Join(' ', arguments)}' exited with {e.Result.ExitCode.ToString(CultureInfo.InvariantCulture)} in {where}", e.Result.Stderr.Trim() is { Length: > 0 } err ? Bound(err) : null);
        }
    }

    private static string Bound(string s) => s.Length > 1000 ? s[..1000] + "…" : s;
}
