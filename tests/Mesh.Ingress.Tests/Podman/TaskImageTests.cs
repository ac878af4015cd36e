using System.Diagnostics;
using System.Formats.Tar;
using Mesh.Ingress.Lab.Podman;

namespace Mesh.Ingress.Tests.Podman;

public sealed class TaskImageTests
{
    [Fact]
    public void Only_a_static_elf_passes_for_the_image_busybox()
    {
        Assert.True(Elf.IsStatic(File.ReadAllBytes(TaskImage.DefaultBusybox)));                  // busybox-static
        Assert.False(Elf.IsStatic(File.ReadAllBytes("/usr/bin/env")));                           // dynamically linked
        Assert.False(Elf.IsStatic("#!/bin/sh\n"u8));
        Assert.False(Elf.IsStatic(new byte[64]));
        var error = Assert.Throws<InvalidOperationException>(() => TaskImage.RequireStaticBusybox("/usr/bin/env"));
        Assert.Contains("busybox-static", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_rootfs_has_busybox_its_applets_and_an_executable_cgi()
    {
        using var tar = new MemoryStream();
        await TaskImage.WriteRootfsAsync(tar, TaskImage.DefaultBusybox, CancellationToken.None);
        tar.Position = 0;
        var entries = new Dictionary<string, TarEntry>(StringComparer.Ordinal);
        await using (var reader = new TarReader(tar))
        {
            while (await reader.GetNextEntryAsync(copyData: true) is { } entry)
            {
                entries[entry.Name] = entry;
            }
        }

        Assert.Equal(new FileInfo(TaskImage.DefaultBusybox).Length, entries["bin/busybox"].Length);
        Assert.Equal(("busybox", TarEntryType.SymbolicLink), (entries["bin/httpd"].LinkName, entries["bin/httpd"].EntryType));
        Assert.True(entries["www/cgi-bin/index.cgi"].Mode.HasFlag(UnixFileMode.OtherExecute));
        Assert.True(entries["tmp/"].Mode.HasFlag(UnixFileMode.StickyBit));
    }

    [Fact]
    public async Task The_cgi_answers_like_lab_serve_under_the_real_busybox()
    {
        var script = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(script, TaskImage.Cgi);
            var info = new ProcessStartInfo(TaskImage.DefaultBusybox) { RedirectStandardOutput = true, UseShellExecute = false };
            info.ArgumentList.Add("sh");
            info.ArgumentList.Add(script);
            info.Environment["MESH_TASK"] = "web-a";
            info.Environment["MESH_NODE"] = "host-a";
            info.Environment["REMOTE_ADDR"] = "192.0.2.9";
            info.Environment["REMOTE_PORT"] = "40000";
            info.Environment["HTTP_X_FORWARDED_FOR"] = "198.51.100.1, 192.0.2.9";
            info.Environment["PATH"] = "/nonexistent"; // every command the script runs is busybox's own applet
            using var process = Process.Start(info)!;
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();

            // No such connection in netstat here: the local address is "-".
            Assert.Equal("Content-Type: text/plain\r\n\r\nweb-a host-a - peer=192.0.2.9 xff=198.51.100.1,192.0.2.9 proxy=-\n", output);
        }
        finally
        {
            File.Delete(script);
        }
    }
}
