using System.CommandLine;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Cli;

/// <summary><c>mesh doctor</c>: what this kernel and machine offer, which dataplane auto picks, and what to do about gaps.</summary>
public static class DoctorCommand
{
    public static Command Build()
    {
        var command = new Command("doctor", "Check kernel features, tools and privileges; show the dataplane 'auto' picks");
        command.SetAction(async (_, ct) =>
        {
            var runner = new ProcessCommandRunner();
            var problems = 0;
            void Report(bool ok, string what, string fix)
            {
                Console.WriteLine($"{(ok ? "ok  " : "MISS")}  {what}{(ok ? "" : "  → " + fix)}");
                problems += ok ? 0 : 1;
            }

            Report(Environment.IsPrivilegedProcess, "running as root", "run as root (network namespaces and rules need CAP_NET_ADMIN)");
            Report(Directory.Exists("/proc/sys/net/ipv4"), "network stack in /proc/sys/net", "mount /proc");
            var (ipvs, ipvsReason) = KernelFeatures.IpvsStatus();
            Report(ipvs, $"IPVS: {ipvsReason}", "modprobe ip_vs, or use the nftables dataplane (auto does)");
            Report(await Works(runner, "nft", ["list", "tables"], ct), "nf_tables and the nft tool", "apt-get install nftables (and a kernel with CONFIG_NF_TABLES)");
            string flavour;
            try
            {
                flavour = (await IptablesFlavour.DetectAsync(runner, ct)).Name;
                Report(true, $"iptables ({flavour} flavour works)", "");
            }
            catch (InvalidOperationException e)
            {
                Report(false, "iptables", e.Message);
            }

            Report(await Works(runner, "ip", ["-V"], ct), "iproute2 (ip, bridge)", "apt-get install iproute2");
            Report(await Works(runner, "nsenter", ["--version"], ct), "nsenter", "apt-get install util-linux");
            Report(Directory.Exists("/sys/class/net") && File.Exists("/proc/sys/net/bridge/bridge-nf-call-iptables") || Directory.Exists("/sys/module/bridge"), "bridge", "modprobe bridge");
            var (choice, reason) = DataplaneSelector.Resolve(DataplaneChoice.Auto, ipvs);
            Console.WriteLine($"dataplane: {choice.ToString().ToLowerInvariant()} ({reason})");
            return problems == 0 ? 0 : 1;
        });
        return command;
    }

    private static async Task<bool> Works(ICommandRunner runner, string file, string[] args, CancellationToken ct)
    {
        try
        {
            return (await runner.RunAsync(file, args, null, ct)).ExitCode == 0;
        }
        catch (CommandFailedException)
        {
            return false;
        }
    }
}
