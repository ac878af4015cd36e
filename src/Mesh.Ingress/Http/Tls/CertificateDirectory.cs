using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Http.Tls;

/// <summary>
/// Reads <c>--certs-dir</c>: one <c>&lt;host&gt;.crt</c> (PEM: the leaf first, then any intermediates) and
/// <c>&lt;host&gt;.key</c> (PEM private key, not readable by others) per host; <c>*.example.crt</c> is a wildcard for
/// one label below <c>example</c>. Nothing in the directory is trusted: files are read through
/// <see cref="ConfinedFile"/> (no symbolic link followed, regular files only, at most 64 KiB), names must be host
/// names, the certificate must match its key, name its host and not have expired. A pair that fails any of this is
/// refused with the reason and its file named, and the host keeps the certificate it had (if any): a half-written
/// or wrong file never takes a working host down. Removing <c>&lt;host&gt;.crt</c> stops serving that host.
/// Hidden files (editors' and tools' temporaries) and other extensions are ignored.
/// </summary>
public static class CertificateDirectory
{
    public const string CertificateExtension = ".crt";
    public const string KeyExtension = ".key";

    /// <summary>A bound on the work one scan does for a directory someone filled with junk.</summary>
    public const int MaxHosts = 4096;

    /// <summary>
    /// The directory's certificates, starting from <paramref name="previous"/>: unchanged pairs are kept as they are
    /// (not parsed again), changed ones replaced when valid, bad ones refused keeping the previous certificate.
    /// </summary>
    public static (HostCertificates Certificates, IReadOnlyList<CertificateChange> Changes) Scan(string directory, HostCertificates previous, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(previous);
        var changes = new List<CertificateChange>();
        var result = new Dictionary<string, HostCertificate>(StringComparer.OrdinalIgnoreCase);
        var hosts = new List<(string Host, string Name)>();
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
        {
            var name = entry.Name;
            if (name.StartsWith('.') || !name.EndsWith(CertificateExtension, StringComparison.Ordinal))
            {
                continue;
            }

            var host = name[..^CertificateExtension.Length].ToLowerInvariant();
            if (!IsHostName(host))
            {
                changes.Add(new CertificateChange(CertificateChangeKind.Refused, Validate.Printable(host), Path.Combine(directory, name),
                    "the file name is not <host>.crt with a host name (letters, digits, '-', dots; *.domain for a wildcard)"));
            }
            else if (hosts.Count == MaxHosts)
            {
                changes.Add(new CertificateChange(CertificateChangeKind.Refused, host, Path.Combine(directory, name), $"more than {MaxHosts.ToString(CultureInfo.InvariantCulture)} hosts in the directory"));
            }
            else
            {
                hosts.Add((host, name));
            }
        }

        foreach (var (host, name) in hosts)
        {
            var certificatePath = Path.Combine(directory, name);
            var old = previous.ByHost.GetValueOrDefault(host);
            try
            {
                var loaded = Load(directory, host, certificatePath, name[..^CertificateExtension.Length] + KeyExtension, old, now);
                result[host] = loaded;
                if (!ReferenceEquals(loaded, old))
                {
                    changes.Add(new CertificateChange(old is null ? CertificateChangeKind.Loaded : CertificateChangeKind.Replaced, host, certificatePath, Describe(loaded)));
                }
            }
            catch (Exception e) when (e is CertificateFileException or ConfinedFileException or CryptographicException or IOException or ArgumentException)
            {
                changes.Add(new CertificateChange(CertificateChangeKind.Refused, host, certificatePath,
                    e.Message + (old is null ? "; the host has no certificate" : $"; still serving the previous one ({Describe(old)})")));
                if (old is not null)
                {
                    result[host] = old;
                }
            }
        }

        foreach (var gone in previous.ByHost.Values.Where(c => !result.ContainsKey(c.Host) && !hosts.Any(h => string.Equals(h.Host, c.Host, StringComparison.OrdinalIgnoreCase))))
        {
            changes.Add(new CertificateChange(CertificateChangeKind.Removed, gone.Host, Path.Combine(directory, gone.Host + CertificateExtension), "the file is gone; the host is no longer served over TLS"));
        }

        return (new HostCertificates(result), changes);
    }

    /// <summary>A host name as a file may name it: dot-separated labels, or <c>*.</c> and at least two labels.</summary>
    public static bool IsHostName(string host)
    {
        var name = host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host;
        var labels = name.Split('.');
        return name.Length is > 0 and <= 253 && labels.All(Validate.IsLabel) && (name.Length == host.Length || labels.Length >= 2);
    }

    public static string Describe(HostCertificate certificate) =>
        string.Create(CultureInfo.InvariantCulture, $"serial {certificate.Leaf.SerialNumber}, sha256 {certificate.Thumbprint[..16]}…, expires {certificate.Leaf.NotAfter.ToUniversalTime():yyyy-MM-dd}");

    private static HostCertificate Load(string directory, string host, string certificatePath, string keyName, HostCertificate? old, DateTimeOffset now)
    {
        var keyPath = Path.Combine(directory, keyName);
        var certificatePem = ConfinedFile.Read(directory, certificatePath) ?? throw new CertificateFileException("the file vanished while being read");
        var keyPem = ConfinedFile.Read(directory, keyPath) ?? throw new CertificateFileException($"no key file {keyName} beside it");
        if ((File.GetUnixFileMode(keyPath) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            throw new CertificateFileException($"{keyName} is readable or writable by others: chmod 600 it");
        }

        var digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(certificatePem + "\0" + keyPem)));
        if (old is not null && old.FilesDigest == digest)
        {
            return old;
        }

        var chain = new X509Certificate2Collection();
        chain.ImportFromPem(certificatePem);
        if (chain.Count == 0)
        {
            throw new CertificateFileException("no CERTIFICATE block in the file");
        }

        X509Certificate2 leaf;
        try
        {
            leaf = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new CertificateFileException($"the certificate and {keyName} do not make a pair (wrong key, or not PEM): {e.Message}");
        }

        // A wildcard's file must hold a wildcard certificate: any name one label below must match.
        var probe = host.StartsWith("*.", StringComparison.Ordinal) ? "mesh-sni-probe" + host[1..] : host;
        if (!leaf.MatchesHostname(probe, allowWildcards: true, allowCommonName: false))
        {
            leaf.Dispose();
            throw new CertificateFileException($"the certificate does not name {host} in its subject alternative names");
        }

        if (leaf.NotAfter.ToUniversalTime() < now.UtcDateTime)
        {
            leaf.Dispose();
            throw new CertificateFileException(string.Create(CultureInfo.InvariantCulture, $"the certificate expired on {leaf.NotAfter.ToUniversalTime():u}"));
        }

        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < chain.Count; i++)
        {
            intermediates.Add(chain[i]);
        }

        // offline: the chain is what the file carries; the daemon fetches nothing (AIA, OCSP) on a reload.
        var context = SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
        return new HostCertificate(host, leaf, context, digest);
    }
}

/// <summary>A certificate or key file that cannot be used, with the reason.</summary>
public sealed class CertificateFileException(string message) : Exception(message);
