using System.Buffers.Binary;

namespace Mesh.Ingress.Lab.Podman;

/// <summary>Just enough of the ELF format (64-bit, little-endian: this machine's) to tell a static binary.</summary>
public static class Elf
{
    private const uint ProgramInterpreter = 3; // PT_INTERP (elf.h)

    /// <summary>True for an ELF64 little-endian file with program headers and none of them PT_INTERP.</summary>
    public static bool IsStatic(ReadOnlySpan<byte> file)
    {
        // e_ident: magic (\u007F not \x7F: \x would swallow the E), EI_CLASS 2 (64-bit), EI_DATA 1 (little-endian); the header is 64 bytes.
        if (file.Length < 64 || !file[..4].SequenceEqual("\u007FELF"u8) || file[4] != 2 || file[5] != 1)
        {
            return false;
        }

        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(file[0x20..]);
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(file[0x36..]);
        var phnum = BinaryPrimitives.ReadUInt16LittleEndian(file[0x38..]);
        if (phnum == 0 || phentsize < 4 || phoff > (ulong)file.Length || (ulong)phentsize * phnum > (ulong)file.Length - phoff)
        {
            return false;
        }

        for (var i = 0; i < phnum; i++)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(file[((int)phoff + (i * phentsize))..]) == ProgramInterpreter)
            {
                return false;
            }
        }

        return true;
    }
}
