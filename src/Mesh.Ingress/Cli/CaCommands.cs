using System.CommandLine;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Security;

namespace Mesh.Ingress.Cli;

/// <summary><c>mesh ca init</c> and <c>mesh ca issue</c>: the cluster CA and the node certificates for mutual TLS between daemons.</summary>
public static class CaCommands
{
    public static Command Build()
    {
        var ca = new Command("ca", "The cluster CA: mutual TLS for the TCP API and --join");

        var dir = new Option<string>("--dir") { Description = "The CA's directory (ca.crt, ca.key)", Required = true };
        var name = new Option<string>("--name") { Description = "The CA's common name", DefaultValueFactory = _ => "mesh cluster CA" };
        var caDays = new Option<int>("--days") { Description = "Validity in days", DefaultValueFactory = _ => 3650 };
        var init = new Command("init", "Make a new cluster CA in --dir (never overwrites one)") { dir, name, caDays };
        init.SetAction(parse => CliErrors.RunAsync(() =>
        {
            using var authority = CertificateAuthority.Create(parse.GetValue(name)!, Days("--days", parse.GetValue(caDays)));
            var directory = parse.GetValue(dir)!;
            authority.Save(directory);
            Console.WriteLine($"CA written: {CertificateAuthority.CertificatePath(directory)} (give it to every node as --tls-ca) and {CertificateAuthority.KeyPath(directory)} (keep it secret)");
            return Task.FromResult(0);
        }).GetAwaiter().GetResult());

        var node = new Option<string>("--node") { Description = "The node's name (the certificate's subject and DNS name)", Required = true };
        var ips = new Option<string[]>("--ip") { Description = "An address peers dial this node at (its --advertise-addr); repeatable" };
        var dns = new Option<string[]>("--dns") { Description = "Another DNS name for the node; repeatable" };
        var days = new Option<int>("--days") { Description = "Validity in days", DefaultValueFactory = _ => 825 };
        var output = new Option<string?>("--out") { Description = "Where to write NODE.crt and NODE.key (default: --dir)" };
        var issue = new Command("issue", "Issue a node certificate (server and client auth) signed by the CA in --dir") { dir, node, ips, dns, days, output };
        issue.SetAction(parse => CliErrors.RunAsync(() =>
        {
            var nodeName = Validate.Label("--node", parse.GetValue(node));
            var addresses = (parse.GetValue(ips) ?? []).Select(ip => IPAddress.TryParse(ip, out var a) ? a : throw new ArgumentException($"--ip '{ip}' is not an IP address")).ToList();
            var names = (parse.GetValue(dns) ?? []).Select(d => Validate.Label("--dns", d)).ToList();
            var directory = parse.GetValue(dir)!;
            using var authority = CertificateAuthority.Load(directory);
            var target = parse.GetValue(output) ?? directory;
            var (cert, key) = (Path.Combine(target, nodeName + ".crt"), Path.Combine(target, nodeName + ".key"));
            authority.Issue(nodeName, addresses, names, Days("--days", parse.GetValue(days))).Save(cert, key);
            Console.WriteLine($"Certificate for {nodeName}: {cert}, key {key}; run its daemon with --tls-cert {cert} --tls-key {key} --tls-ca {CertificateAuthority.CertificatePath(directory)}");
            return Task.FromResult(0);
        }).GetAwaiter().GetResult());

        ca.Subcommands.Add(init);
        ca.Subcommands.Add(issue);
        return ca;
    }

    private static TimeSpan Days(string option, int days) =>
        days is >= 1 and <= 36_500 ? TimeSpan.FromDays(days) : throw new ArgumentException($"{option} {days}: use 1 to 36500");
}
