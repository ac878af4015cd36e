using System.Security.Cryptography;
using System.Text;
using Mesh.Discovery.Security;

namespace Mesh.Ingress.Security;

/// <summary>
/// The shared secret of <c>--api-token-file</c>. Requests on a TCP listener must carry it as
/// <c>Authorization: Bearer TOKEN</c>; the comparison is over SHA-256 digests with
/// <see cref="CryptographicOperations.FixedTimeEquals"/>, so neither the content nor the length of the token leaks
/// through timing.
/// </summary>
public sealed class BearerToken
{
    /// <summary>A token an attacker cannot guess: at least 128 bits of hex, or the equivalent.</summary>
    public const int MinLength = 32;

    private readonly byte[] _digest;

    private BearerToken(string value)
    {
        Value = value;
        _digest = SHA256.HashData(Encoding.UTF8.GetBytes(value));
    }

    /// <summary>What a client sends.</summary>
    public string Value { get; }

    /// <summary>The file's first line, surrounding whitespace removed; errors name <paramref name="option"/>.</summary>
    public static BearerToken Load(string option, string? path)
    {
        var text = CredentialFile.Read(option, path, secret: true).Trim();
        if (text.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException($"{option} '{path}' must hold one line: the token");
        }

        if (text.Length < MinLength)
        {
            throw new ArgumentException($"{option} '{path}': the token has {text.Length} characters, at least {MinLength} are needed (e.g. openssl rand -hex 32 > FILE)");
        }

        if (text.Any(c => c is < '!' or > '~'))
        {
            throw new ArgumentException($"{option} '{path}': the token may hold only visible ASCII characters (it travels in an HTTP header)");
        }

        return new BearerToken(text);
    }

    public static BearerToken FromValue(string value) => new(value);

    /// <summary>Whether an <c>Authorization</c> header value carries this token.</summary>
    public bool Matches(string? authorization)
    {
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _digest);
    }
}
