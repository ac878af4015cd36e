using Mesh.Ingress.Cli;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Tests.EndToEnd;

namespace Mesh.Ingress.Tests.Cli;

/// <summary>
/// Issue 13 part 8: what a new user hit on first contact, each as it was seen — the real `mesh` binary and the real
/// mesh.sh, run as a user runs them.
/// </summary>
public sealed class FirstContactTests
{
    /// <summary>Bad usage is exit 2 everywhere (the README's promise), whether System.CommandLine or Mesh finds it.</summary>
    [Theory]
    [InlineData("bogus")]                                            // unknown command
    [InlineData("service")]                                          // a command group without its command
    [InlineData("service", "create")]                                // missing argument
    [InlineData("service", "ls", "--no-such-option")]                // unknown option
    [InlineData("task", "add", "web.9")]                             // required --service/--node missing
    [InlineData("service", "create", "shop", "--publish", "99999:80")] // a bad value the CLI parses itself
    [InlineData("service", "create", "shop", "--mode", "round-robin")]
    [InlineData("task", "add", "--service", "web", "--node", "n1", "--ip", "10.255.0.9")]
    [InlineData("lab", "up", "--nodes", "0")]
    [InlineData("lab", "up", "--runtime", "docker")]                 // netns or podman (checked before anything is made)
    [InlineData("lab", "run", "web", "--node", "1")]                 // not <service>.<k>
    [InlineData("lab", "run", "we b.1", "--node", "1")]
    [InlineData("lab", "run", "web.9", "--node", "49")]              // no such lab node (checked before anything is made)
    [InlineData("doctor", "--dataplane", "fast")]
    [InlineData("service", "ls", "--api", "ftp://somewhere")]
    public async Task Bad_usage_exits_2_with_a_message(params string[] args)
    {
        // An API nobody serves: a usage error must be found before any request is sent (else this would be exit 3).
        var client = args[0] is "service" or "task" or "node" && !args.Contains("--api");
        var result = await Shell.MeshAsync([.. args, .. client ? ["--api", "unix:///run/mesh/first-contact-nobody.sock"] : Array.Empty<string>()]);
        Assert.True(result.ExitCode == CliErrors.Usage, $"mesh {string.Join(' ', args)}: exit {result.ExitCode}, stderr: {result.Stderr}");
        Assert.False(string.IsNullOrWhiteSpace(result.Stderr));
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal); // a message, not a stack trace
    }

    [Fact]
    public async Task A_lone_published_port_is_refused_naming_the_forms_that_work()
    {
        var result = await Shell.MeshAsync("service", "create", "shop", "--publish", "9300", "--api", "unix:///run/mesh/first-contact-nobody.sock");

        Assert.Equal(CliErrors.Usage, result.ExitCode);
        Assert.Contains("--publish '9300' names one port", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("PUBLISHED:TARGET", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("9300:9300", result.Stderr, StringComparison.Ordinal);
    }

    /// <summary>Was: "store at http://mesh/ is unreachable: Cannot assign requested address (mesh:80)".</summary>
    [Fact]
    public async Task An_unreachable_api_is_named_by_the_socket_path_that_was_tried()
    {
        var socket = $"/run/mesh/first-contact-{Environment.ProcessId}.sock";
        var result = await Shell.MeshAsync("service", "ls", "--api", $"unix://{socket}");
        var inspect = await Shell.MeshAsync("service", "inspect", "web", "--api", $"unix://{socket}");

        foreach (var r in new[] { result, inspect })
        {
            Assert.Equal(CliErrors.Unreachable, r.ExitCode);
            Assert.Contains($"no socket at {socket}", r.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("http://mesh/", r.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("mesh:80", r.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("Cannot assign requested address", r.Stderr, StringComparison.Ordinal);
        }

        // The default API names the default socket; MESH_API is what a user sets.
        Assert.Contains("MESH_API", result.Stderr, StringComparison.Ordinal);
    }

    /// <summary>On this machine's kernel (no IPVS) auto picks nftables, which works: exit 0, and the README's needs were tried.</summary>
    [LabFact]
    public async Task Doctor_exits_0_where_auto_works_and_tries_veth_bridge_and_vxlan()
    {
        var links = (await Shell.CheckedAsync("ip", "-o", "link")).Split('\n').Length;
        var result = await Shell.MeshAsync("doctor");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stdout}{result.Stderr}");
        foreach (var need in new[] { "veth", "bridge", "VXLAN", "nf_tables", "network namespaces" })
        {
            Assert.Matches($"(?m)^ok +{need} ", result.Stdout);
        }

        Assert.Contains("has everything it needs", result.Stdout, StringComparison.Ordinal);

        // The probes ran in throw-away namespaces: nothing was added to this one.
        Assert.Equal(links, (await Shell.CheckedAsync("ip", "-o", "link")).Split('\n').Length);
        Assert.DoesNotContain("mesh-doctor", await Shell.CheckedAsync("ip", "-o", "link"), StringComparison.Ordinal);
    }

    /// <summary>A kernel without VXLAN: the line says what failed and how to fix it, and the chosen dataplane cannot work (exit 1).</summary>
    [Fact]
    public async Task Doctor_names_a_failed_probe_and_exits_1_only_for_what_the_chosen_dataplane_needs()
    {
        var noVxlan = new ScriptedRunner(args => args.Contains("vxlan") ? new CommandResult(2, "", "Error: Unknown device type.\n") : new CommandResult(0, "", ""));
        var (checks, choice, reason) = await new DoctorChecks(noVxlan, true, (false, "no IPVS here")).RunAsync(DataplaneChoice.Auto, CancellationToken.None);
        var output = new StringWriter();

        Assert.Equal(1, DoctorChecks.Report(output, checks, choice, reason));
        Assert.Matches(@"(?m)^MISS +VXLAN .*: Error: Unknown device type\.  → modprobe vxlan", output.ToString());
        Assert.Matches(@"(?m)^ok +veth ", output.ToString());

        // Everything there but IPVS: auto uses nftables and passes; asking for ipvs fails, saying why.
        var allThere = new ScriptedRunner(_ => new CommandResult(0, "", ""));
        var doctor = new DoctorChecks(allThere, true, (false, "no IPVS here"));
        (checks, choice, reason) = await doctor.RunAsync(DataplaneChoice.Auto, CancellationToken.None);
        output = new StringWriter();
        Assert.Equal(0, DoctorChecks.Report(output, checks, choice, reason));
        Assert.Matches(@"(?m)^no +IPVS: no IPVS here  \(not needed by the nftables dataplane\)", output.ToString());

        (checks, choice, reason) = await doctor.RunAsync(DataplaneChoice.Ipvs, CancellationToken.None);
        output = new StringWriter();
        Assert.Equal(1, DoctorChecks.Report(output, checks, choice, reason));
        Assert.Matches(@"(?m)^MISS +IPVS: no IPVS here  → modprobe ip_vs", output.ToString());
    }

    private sealed class ScriptedRunner(Func<IReadOnlyList<string>, CommandResult> answer) : ICommandRunner
    {
        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(answer([file, .. arguments]));
    }
}

/// <summary>
/// <c>./mesh.sh install [--prefix DIR]</c>: a <c>mesh</c> command that runs the checkout's mesh.sh from any directory,
/// tried on a copy of mesh.sh in a scratch checkout whose "built" mesh is a stub that reports how it was run.
/// </summary>
public sealed class MeshShInstallTests : IDisposable
{
    private readonly DirectoryInfo _scratch = Directory.CreateTempSubdirectory("mesh-install-");

    private string Checkout => Path.Combine(_scratch.FullName, "check out"); // a space: quoting is part of the test

    private string Prefix => Path.Combine(_scratch.FullName, "bin");

    public MeshShInstallTests()
    {
        Directory.CreateDirectory(Path.Combine(Checkout, "scripts"));
        Directory.CreateDirectory(Path.Combine(Checkout, "src"));
        Directory.CreateDirectory(Path.Combine(Checkout, "artifacts", "mesh"));
        Directory.CreateDirectory(Prefix);
        File.Copy(Path.Combine(Tests.Checkout.Root, "mesh.sh"), Path.Combine(Checkout, "mesh.sh"));
        Executable(Path.Combine(Checkout, "mesh.sh"));
        Script(Path.Combine(Checkout, "scripts", "install-deps.sh"), "exit 0");
        File.WriteAllText(Path.Combine(Checkout, "Directory.Build.props"), "");
        File.WriteAllText(Path.Combine(Checkout, "Directory.Packages.props"), "");
        var stub = Path.Combine(Checkout, "artifacts", "mesh", "mesh");
        Script(stub, "echo \"cwd=$PWD\"; for a in \"$@\"; do echo \"arg=$a\"; done");
        File.SetLastWriteTimeUtc(stub, DateTime.UtcNow.AddMinutes(1)); // newer than the sources: no build
    }

    public void Dispose() => _scratch.Delete(recursive: true);

    [Fact]
    public async Task Install_puts_a_mesh_on_the_prefix_that_runs_the_checkout_from_any_directory()
    {
        var install = await Shell.RunAsync("bash", Path.Combine(Checkout, "mesh.sh"), "install", "--prefix", Prefix);
        Assert.True(install.ExitCode == 0, install.Stderr);
        Assert.Contains($"Installed {Prefix}/mesh", install.Stdout, StringComparison.Ordinal);

        // Run from another directory, with an argument that has a space: the stub sees both as given.
        var run = await new ProcessCommandRunner().RunAsync("bash", ["-c", "cd / && \"$0\" ca init --dir 'my ca'", Path.Combine(Prefix, "mesh")]);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(["cwd=/", "arg=ca", "arg=init", "arg=--dir", "arg=my ca"], run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        // Again: replaces its own wrapper.
        Assert.Equal(0, (await Shell.RunAsync("bash", Path.Combine(Checkout, "mesh.sh"), "install", "--prefix", Prefix)).ExitCode);
    }

    [Fact]
    public async Task Install_refuses_clearly_and_changes_nothing_when_it_cannot()
    {
        var mine = Path.Combine(Prefix, "mesh");
        await File.WriteAllTextAsync(mine, "#!/bin/sh\necho someone else's mesh\n");

        var taken = await Shell.RunAsync("bash", Path.Combine(Checkout, "mesh.sh"), "install", "--prefix", Prefix);
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains($"{mine} already exists and is not a mesh wrapper", taken.Stderr, StringComparison.Ordinal);
        Assert.Equal("#!/bin/sh\necho someone else's mesh\n", await File.ReadAllTextAsync(mine));
        Assert.Equal(["mesh"], Directory.GetFiles(Prefix).Select(Path.GetFileName)); // no temporary file left

        var missing = await Shell.RunAsync("bash", Path.Combine(Checkout, "mesh.sh"), "install", "--prefix", Path.Combine(_scratch.FullName, "nope"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("is not a directory", missing.Stderr, StringComparison.Ordinal);

        var usage = await Shell.RunAsync("bash", Path.Combine(Checkout, "mesh.sh"), "install", "--perfix", Prefix);
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("unknown argument '--perfix'", usage.Stderr, StringComparison.Ordinal);
    }


    private static void Script(string path, string body)
    {
        File.WriteAllText(path, "#!/usr/bin/env bash\n" + body + "\n");
        Executable(path);
    }

    private static void Executable(string path) =>
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
}

/// <summary>
/// The IPVS kernel scripts refuse a cache the guest cannot see. With a checkout under /run the default cache is
/// &lt;checkout&gt;/.uml: the message must name that path and what to do, not a variable the user never set.
/// </summary>
public sealed class KernelScriptMessageTests
{
    [LabFact]
    public async Task A_default_cache_the_guest_cannot_see_is_named_by_its_path_not_by_an_unset_variable()
    {
        // A checkout under /run, as the scripts see it: tests/kernel reached through a symlink (its repo is where it is called from).
        var checkout = Directory.CreateDirectory($"/run/mesh-first-contact-{Environment.ProcessId}").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(checkout, "tests"));
            File.CreateSymbolicLink(Path.Combine(checkout, "tests", "kernel"), Path.Combine(Tests.Checkout.Root, "tests", "kernel"));
            foreach (var script in new[] { "run-in-uml.sh", "run-in-qemu.sh" })
            {
                var result = await new ProcessCommandRunner().RunAsync("env", ["-u", "MESH_UML_CACHE", "bash", Path.Combine(checkout, "tests", "kernel", script), "--", "true"]);

                Assert.Equal(2, result.ExitCode);
                Assert.Contains($"{checkout}/.uml", result.Stderr, StringComparison.Ordinal);
                Assert.DoesNotContain("MESH_UML_CACHE=", result.Stderr, StringComparison.Ordinal);
                Assert.Contains("set MESH_UML_CACHE", result.Stderr, StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(Path.Combine(checkout, "tests", "kernel")); // the link, never what it points to
            Directory.Delete(checkout, recursive: true);
        }
    }
}

/// <summary>The README as a new user follows it, as root on a Debian without sudo, in the lab it just brought up.</summary>
public sealed class ReadmeFirstContactTests
{
    private static readonly string Root = Tests.Checkout.Root;

    [Fact]
    public void Nothing_the_user_runs_starts_with_sudo()
    {
        var files = new[] { "README.md", "mesh.sh", "test.sh" }.Select(f => Path.Combine(Root, f))
            .Concat(Directory.GetFiles(Path.Combine(Root, "scripts"), "*.sh"));
        foreach (var file in files)
        {
            Assert.DoesNotMatch(@"(^|[\s`(])sudo\s", File.ReadAllText(file));
        }
    }

    /// <summary>
    /// Was: the README's `mesh service create api …` collided with the lab's own dnsrr service `api`. Commands that
    /// name another cluster's API (the two-host walkthrough's `--api unix:///run/mesh/walk/…`) are not the lab's.
    /// </summary>
    [Fact]
    public void The_readmes_examples_create_services_the_lab_does_not_already_have()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "README.md"));
        var created = lines
            .Where(l => !l.Contains("--api ", StringComparison.Ordinal) || l.Contains("/run/mesh/lab/", StringComparison.Ordinal))
            .SelectMany(l => System.Text.RegularExpressions.Regex.Matches(l, @"mesh service create ([a-z0-9-]+)"))
            .Select(m => m.Groups[1].Value).ToList();

        Assert.NotEmpty(created);
        Assert.All(created, name => Assert.DoesNotContain(name, new[] { Lab.LabPlan.DemoService, Lab.LabPlan.DnsrrService }));
    }

    /// <summary>`mesh` is on the PATH only after `./mesh.sh install`: the README says so before its first `mesh` command.</summary>
    [Fact]
    public void The_readme_installs_mesh_before_its_first_mesh_command()
    {
        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        var install = readme.IndexOf("./mesh.sh install", StringComparison.Ordinal);
        var firstMesh = System.Text.RegularExpressions.Regex.Match(readme, @"(?m)^(# )?mesh [a-z]").Index;

        Assert.True(install >= 0 && install < firstMesh, "./mesh.sh install must come before the first `mesh` command");
    }
}
