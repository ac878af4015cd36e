namespace Mesh.Ingress.Kernel;

/// <summary>The few iproute2 operations the daemon and the lab need, each idempotent where the kernel allows.</summary>
public sealed class LinkTool(ICommandRunner runner)
{
    public async Task<bool> LinkExistsAsync(NetworkNamespacePath netns, string name, CancellationToken cancellationToken)
    {
        var result = await runner.RunInAsync(netns, "ip", ["-o", "link", "show", "dev", name], null, cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0;
    }

    public Task IpAsync(NetworkNamespacePath netns, IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        runner.RunCheckedInAsync(netns, "ip", arguments, null, cancellationToken);

    /// <summary>Runs <c>ip</c> and ignores failure (used for removals of things that may already be gone).</summary>
    public Task<CommandResult> TryIpAsync(NetworkNamespacePath netns, IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        runner.RunInAsync(netns, "ip", arguments, null, cancellationToken);

    public static bool NamespaceExists(string name) => File.Exists(NetworkNamespacePath.Named(name).Path);

    public async Task EnsureNamespaceAsync(string name, CancellationToken cancellationToken)
    {
        if (!NamespaceExists(name))
        {
            await runner.RunCheckedAsync("ip", ["netns", "add", name], null, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task SysctlAsync(NetworkNamespacePath netns, string key, string value, CancellationToken cancellationToken) =>
        runner.RunCheckedInAsync(netns, "sysctl", ["-q", "-w", $"{key}={value}"], null, cancellationToken);

    /// <summary>Every link of the namespace with its state, master and IPv4 addresses: one <c>ip -j addr show</c>.</summary>
    public async Task<IReadOnlyDictionary<string, LinkState>> ReadLinksAsync(NetworkNamespacePath netns, CancellationToken cancellationToken)
    {
        var json = await runner.RunCheckedInAsync(netns, "ip", ["-j", "addr", "show"], null, cancellationToken).ConfigureAwait(false);
        return LinkState.ParseAll(json);
    }

    /// <summary>The gateway of the namespace's IPv4 default route, or null when it has none.</summary>
    public async Task<string?> ReadDefaultGatewayAsync(NetworkNamespacePath netns, CancellationToken cancellationToken)
    {
        var json = await runner.RunCheckedInAsync(netns, "ip", ["-j", "route", "show", "default"], null, cancellationToken).ConfigureAwait(false);
        using var routes = System.Text.Json.JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        return routes.RootElement.EnumerateArray().Select(r => r.TryGetProperty("gateway", out var g) ? g.GetString() : null).FirstOrDefault(g => g is not null);
    }

    /// <summary>The IPv4 routes of one table (<c>main</c> by default), as <c>ip -j route show</c> gives them.</summary>
    public async Task<IReadOnlyList<RouteEntry>> ReadRoutesAsync(NetworkNamespacePath netns, string table, CancellationToken cancellationToken)
    {
        var result = await runner.RunInAsync(netns, "ip", ["-j", "-4", "route", "show", "table", table], null, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            return []; // a table that was never written does not exist yet
        }

        using var routes = System.Text.Json.JsonDocument.Parse(string.IsNullOrWhiteSpace(result.Stdout) ? "[]" : result.Stdout);
        return routes.RootElement.EnumerateArray().Select(r => new RouteEntry(
            r.TryGetProperty("dst", out var d) ? d.GetString() ?? "" : "",
            r.TryGetProperty("gateway", out var g) ? g.GetString() : null,
            r.TryGetProperty("dev", out var v) ? v.GetString() : null)).ToArray();
    }

    /// <summary>The IPv4 policy rules at one priority, as (source, table) pairs.</summary>
    public async Task<IReadOnlyList<(string Source, string Table)>> ReadRulesAsync(NetworkNamespacePath netns, int priority, CancellationToken cancellationToken)
    {
        var json = await runner.RunCheckedInAsync(netns, "ip", ["-j", "-4", "rule", "show", "priority", priority.ToString(System.Globalization.CultureInfo.InvariantCulture)], null, cancellationToken).ConfigureAwait(false);
        using var rules = System.Text.Json.JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        return rules.RootElement.EnumerateArray().Select(r => (
            r.TryGetProperty("src", out var s) ? s.GetString() ?? "" : "",
            r.TryGetProperty("table", out var t) ? t.GetString() ?? "" : "")).ToArray();
    }

    /// <summary>Sets the sysctls that differ, after one read of them all (a write per sysctl on every pass would cost a process each).</summary>
    public async Task EnsureSysctlsAsync(NetworkNamespacePath netns, IReadOnlyList<(string Key, string Value)> wanted, CancellationToken cancellationToken)
    {
        var values = (await runner.RunCheckedInAsync(netns, "sysctl", ["-n", .. wanted.Select(w => w.Key)], null, cancellationToken).ConfigureAwait(false))
            .Split('\n', StringSplitOptions.TrimEntries);
        for (var i = 0; i < wanted.Count; i++)
        {
            if (i >= values.Length || values[i] != wanted[i].Value)
            {
                await SysctlAsync(netns, wanted[i].Key, wanted[i].Value, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}

/// <summary>One route of <c>ip -j route show</c>: destination (<c>default</c> or a prefix), gateway, device.</summary>
public sealed record RouteEntry(string Destination, string? Gateway, string? Device);

/// <summary>What <c>ip -j addr show</c> says of one link.</summary>
public sealed record LinkState(string Name, bool Up, string? Master, IReadOnlyList<string> Ipv4Addresses, string? Mac = null)
{
    public static IReadOnlyDictionary<string, LinkState> ParseAll(string json)
    {
        using var links = System.Text.Json.JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        var result = new Dictionary<string, LinkState>(StringComparer.Ordinal);
        foreach (var link in links.RootElement.EnumerateArray())
        {
            if (!link.TryGetProperty("ifname", out var name) || name.GetString() is not { } ifname)
            {
                continue;
            }

            var up = link.TryGetProperty("flags", out var flags) && flags.EnumerateArray().Any(f => f.GetString() == "UP");
            var master = link.TryGetProperty("master", out var m) ? m.GetString() : null;
            var addresses = link.TryGetProperty("addr_info", out var info)
                ? info.EnumerateArray()
                    .Where(a => a.TryGetProperty("family", out var f) && f.GetString() == "inet" && a.TryGetProperty("local", out _) && a.TryGetProperty("prefixlen", out _))
                    .Select(a => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}"))
                    .ToArray()
                : [];
            var mac = link.TryGetProperty("address", out var a) && a.ValueKind == System.Text.Json.JsonValueKind.String ? a.GetString() : null;
            result[ifname] = new LinkState(ifname, up, master, addresses, mac);
        }

        return result;
    }
}
