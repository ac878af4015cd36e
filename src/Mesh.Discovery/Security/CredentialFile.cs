namespace Mesh.Discovery.Security;

/// <summary>
/// Reads the small files credentials live in (PEM certificates and keys, tokens) given on a command line. Every
/// failure names the option it came from, so an operator sees which flag to fix before anything starts listening.
/// </summary>
public static class CredentialFile
{
    /// <summary>Certificates, keys and tokens are a few KiB; anything bigger is not what the option expects.</summary>
    public const int MaxBytes = 1 << 20;

    /// <param name="secret">A key or token: refused when other users may read it (the same rule ssh applies to keys).</param>
    public static string Read(string option, string? path, bool secret)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ArgumentException($"{option}: no file given");
        }

        if (Directory.Exists(path))
        {
            throw new ArgumentException($"{option} '{path}' is a directory, not a file");
        }

        if (!File.Exists(path))
        {
            throw new ArgumentException($"{option} '{path}': no such file");
        }

        if (secret && (File.GetUnixFileMode(path) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            throw new ArgumentException($"{option} '{path}' can be read by other users: chmod 600 it (it holds a secret)");
        }

        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.None);
            if (stream.Length > MaxBytes)
            {
                throw new ArgumentException($"{option} '{path}' is {stream.Length} bytes: not a credential file (at most {MaxBytes})");
            }

            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            return text.Trim().Length == 0 ? throw new ArgumentException($"{option} '{path}' is empty") : text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option} '{path}' cannot be read: {e.Message}", e);
        }
    }

    /// <summary>Reads and parses the PEM certificate an option names; errors name the option.</summary>
    public static System.Security.Cryptography.X509Certificates.X509Certificate2 ReadCertificate(string option, string? path)
    {
        var pem = Read(option, path, secret: false);
        try
        {
            return System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(pem);
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw new ArgumentException($"{option} '{path}' holds no PEM certificate: {e.Message}", e);
        }
    }
}
