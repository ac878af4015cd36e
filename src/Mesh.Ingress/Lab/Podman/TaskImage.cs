using System.Formats.Tar;
using System.Text;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Lab.Podman;

/// <summary>
/// <c>mesh lab image</c>: the task image <c>localhost/mesh-task</c>, made offline from a static busybox. The rootfs
/// is written straight into a tar (no staging directory): busybox and a link per applet the task uses, a CGI that
/// answers as <c>mesh lab serve</c> does, and the image's command (busybox httpd on port 80); then <c>podman import</c>.
/// No registry is contacted.
/// </summary>
public sealed class TaskImage(ICommandRunner runner, string busybox)
{
    public const string Name = "localhost/mesh-task";

    public const string DefaultBusybox = "/bin/busybox";

    /// <summary>The applets the task and a person debugging it use: httpd and its CGI, DNS and HTTP clients, ip.</summary>
    private static readonly string[] Applets =
    [
        "sh", "httpd", "hostname", "netstat", "awk", "tr", "printf", "echo", "cat", "env", "ls", "ps", "sleep",
        "nslookup", "wget", "nc", "ping", "ip", "ifconfig", "route", "kill",
    ];

    /// <summary>
    /// Answers "TASK NODE IP peer=PEER xff=XFF proxy=-" like <c>mesh lab serve</c>. TASK is $MESH_TASK or the
    /// container's hostname, NODE $MESH_NODE. busybox httpd gives a CGI no SERVER_ADDR, so IP (the address the
    /// request arrived on) is the local end of this very connection, found in netstat by its remote end
    /// (REMOTE_ADDR:REMOTE_PORT). No PROXY protocol here: proxy is always "-".
    /// </summary>
    public const string Cgi = """
        #!/bin/sh
        # mesh-task: answers like `mesh lab serve`: TASK NODE IP peer=PEER xff=XFF proxy=-
        task=${MESH_TASK:-$(hostname)}
        local=$(netstat -tn 2>/dev/null | awk -v p="$REMOTE_ADDR:$REMOTE_PORT" '$5 == p { sub(/:[0-9]+$/, "", $4); print $4; exit }')
        xff=$(printf %s "$HTTP_X_FORWARDED_FOR" | tr -d ' ')
        printf 'Content-Type: text/plain\r\n\r\n'
        printf '%s %s %s peer=%s xff=%s proxy=-\n' "$task" "${MESH_NODE:--}" "${local:--}" "${REMOTE_ADDR:--}" "${xff:--}"

        """;

    /// <summary>The image's configuration, as <c>podman import --change</c> takes it.</summary>
    private static readonly string[] Changes =
    [
        "ENV=PATH=/bin",
        // IPv4 only: on [::] busybox would report peers as [::ffff:a.b.c.d]. No spaces: podman splits a change at the first one.
        """CMD=["/bin/httpd","-f","-p","0.0.0.0:80","-h","/www"]""",

        // httpd as PID 1 has no SIGTERM handler, so podman stop/rm would wait 10 s before killing it; it keeps no state.
        "STOPSIGNAL=SIGKILL",
        "EXPOSE=80",
    ];

    public async Task<string> BuildAsync(CancellationToken cancellationToken)
    {
        RequireStaticBusybox(busybox);
        LabPodman.RequireInstalled();
        System.IO.Directory.CreateDirectory(LabPodman.Directory);
        var tar = Path.Combine(LabPodman.Directory, $"mesh-task-{Environment.ProcessId}.tar");
        try
        {
            await using (var file = File.Create(tar))
            {
                await WriteRootfsAsync(file, busybox, cancellationToken).ConfigureAwait(false);
            }

            // podman sets up its network backend even to import, and takes a lock file in the network configuration
            // directory: a private one keeps /etc/cni/net.d untouched.
            List<string> args = [.. LabPodman.GlobalArguments, "--network-config-dir", $"{LabPodman.Directory}/net.d", "import"];
            foreach (var change in Changes)
            {
                args.AddRange(["--change", change]);
            }

            args.AddRange(["--message", "mesh lab image", tar, Name]);
            var id = await runner.RunCheckedAsync(LabPodman.Executable, args, cancellationToken: cancellationToken).ConfigureAwait(false);
            return id.Trim().Split('\n')[^1];
        }
        finally
        {
            File.Delete(tar);
        }
    }

    public static async Task WriteRootfsAsync(Stream output, string busybox, CancellationToken cancellationToken)
    {
        const UnixFileMode Dir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        const UnixFileMode Exec = Dir;
        const UnixFileMode Plain = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        await using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        foreach (var dir in new[] { "bin/", "etc/", "www/", "www/cgi-bin/", "proc/", "sys/", "dev/", "run/", "root/" })
        {
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, dir) { Mode = Dir }, cancellationToken).ConfigureAwait(false);
        }

        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "tmp/") { Mode = Dir | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.StickyBit }, cancellationToken).ConfigureAwait(false);
        await using (var binary = File.OpenRead(busybox))
        {
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox") { Mode = Exec, DataStream = binary }, cancellationToken).ConfigureAwait(false);
        }

        foreach (var applet in Applets)
        {
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { Mode = Exec, LinkName = "busybox" }, cancellationToken).ConfigureAwait(false);
        }

        await WriteFileAsync(writer, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n", Plain, cancellationToken).ConfigureAwait(false);
        await WriteFileAsync(writer, "etc/group", "root:x:0:\nnogroup:x:65534:\n", Plain, cancellationToken).ConfigureAwait(false);

        // busybox httpd runs cgi-bin/index.cgi for a directory without index.html: every GET / is answered by it.
        await WriteFileAsync(writer, "www/cgi-bin/index.cgi", Cgi, Exec, cancellationToken).ConfigureAwait(false);
    }

    private static async Task WriteFileAsync(TarWriter writer, string name, string text, UnixFileMode mode, CancellationToken cancellationToken)
    {
        using var data = new MemoryStream(Encoding.ASCII.GetBytes(text));
        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = mode, DataStream = data }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The image has no libc: busybox must be the static build (Debian's busybox-static; the busybox package's
    /// binary needs the host's libc). An ELF with a PT_INTERP program header is dynamically linked.
    /// </summary>
    public static void RequireStaticBusybox(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path} does not exist: install busybox-static (apt-get install busybox-static)");
        }

        if (!Elf.IsStatic(File.ReadAllBytes(path)))
        {
            throw new InvalidOperationException($"{path} is not a statically linked ELF binary: the image has no libc, install busybox-static (apt-get install busybox-static)");
        }
    }
}
