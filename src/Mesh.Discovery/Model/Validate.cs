using System.Net;
using System.Net.Sockets;

namespace Mesh.Discovery.Model;

/// <summary>Edge validation shared by the API, the CLI and the store. Every failure names the field.</summary>
public static class Validate
{
    /// <summary>RFC 1123 label: 1-63 of [a-z0-9-], not starting or ending with '-'.</summary>
    public static string Label(string field, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new ValidationException(field, "is required");
        }

        if (!IsLabel(value))
        {
            throw new ValidationException(field, $"'{Printable(value)}' is not a valid name: use 1-63 letters, digits or '-', not starting or ending with '-'");
        }

        return value;
    }

    /// <summary>A dotted name of labels, at most 253 characters (task names such as <c>web.1</c>).</summary>
    public static string DottedName(string field, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new ValidationException(field, "is required");
        }

        if (value.Length > 253 || !value.Split('.').All(IsLabel))
        {
            throw new ValidationException(field, $"'{Printable(value)}' is not a valid name: dot-separated labels of letters, digits or '-'");
        }

        return value;
    }

    /// <summary>The longest container ID accepted: runtimes use 64 hex digits; this leaves room and keeps state small.</summary>
    public const int MaxContainerId = 128;

    /// <summary>A container ID as the CNI spec allows it: letters, digits, '_', '.' and '-', starting with a letter or digit.</summary>
    public static string ContainerId(string field, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new ValidationException(field, "is required");
        }

        if (value.Length > MaxContainerId || !char.IsAsciiLetterOrDigit(value[0]) || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
        {
            throw new ValidationException(field, $"'{Printable(value.Length > MaxContainerId ? value[..MaxContainerId] + "…" : value)}' is not a container ID: up to {MaxContainerId} letters, digits, '_', '.' or '-', starting with a letter or digit");
        }

        return value;
    }

    public static IPAddress IPv4(string field, string? value)
    {
        if (string.IsNullOrEmpty(value) || !IPAddress.TryParse(value, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
            || value.Split('.').Length != 4)
        {
            throw new ValidationException(field, $"'{Printable(value)}' is not an IPv4 address");
        }

        return ip;
    }

    public static Cidr Cidr(string field, string? value) =>
        Model.Cidr.TryParse(value, out var cidr) ? cidr : throw new ValidationException(field, $"'{Printable(value)}' is not an IPv4 CIDR such as 10.0.1.0/24");

    public static void Port(string field, int port)
    {
        if (port is < 1 or > 65535)
        {
            throw new ValidationException(field, $"{port} is not a port (1-65535)");
        }
    }

    public static string AbsolutePath(string field, string value)
    {
        // Control characters (not only NUL) and a trailing "/.." were accepted until the API fuzz run sent "/run/netns/a\rb" and "/x/..".
        if (!value.StartsWith('/') || value.Any(char.IsControl) || value.Contains("/../", StringComparison.Ordinal) || value.EndsWith("/..", StringComparison.Ordinal) || value.Length > 4096)
        {
            throw new ValidationException(field, $"'{Printable(value)}' is not an absolute path");
        }

        return value;
    }

    public static bool IsLabel(string value)
    {
        if (value.Length is 0 or > 63 || value[0] == '-' || value[^1] == '-')
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Echo user input back safely (in errors and logs): bounded, control characters escaped.</summary>
    public static string Printable(string? value)
    {
        if (value is null)
        {
            return "";
        }

        var s = value.Length > 80 ? value[..80] + "…" : value;
        return string.Concat(s.Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString()));
    }
}
