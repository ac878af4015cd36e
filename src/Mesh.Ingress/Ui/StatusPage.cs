using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace Mesh.Ingress.Ui;

/// <summary>
/// The page itself (StatusPage.html, embedded in the assembly): inline CSS and script, no external asset, so it works
/// offline. Its Content-Security-Policy allows exactly that style and that script (by hash) and connections to this
/// origin only: even a bug that let text from the state become markup could not run it.
/// </summary>
public static partial class StatusPage
{
    public static byte[] Html { get; } = Load();

    public static string ContentSecurityPolicy { get; } = Policy(Encoding.UTF8.GetString(Html));

    public static void AddHeaders(IHeaderDictionary headers)
    {
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.CacheControl = "no-store";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
    }

    private static byte[] Load()
    {
        using var resource = typeof(StatusPage).Assembly.GetManifestResourceStream("Mesh.Ingress.Ui.StatusPage.html")
            ?? throw new InvalidOperationException("the status page is missing from the assembly (EmbeddedResource Ui/StatusPage.html)");
        using var copy = new MemoryStream();
        resource.CopyTo(copy);
        return copy.ToArray();
    }

    private static string Policy(string html)
    {
        static string Hash(string text) => $"'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text)))}'";
        var style = StyleBlock().Match(html);
        var script = ScriptBlock().Match(html);
        if (!style.Success || !script.Success)
        {
            throw new InvalidOperationException("the status page must have one inline <style> and one inline <script>");
        }

        return $"default-src 'none'; style-src {Hash(style.Groups[1].Value)}; script-src {Hash(script.Groups[1].Value)}; "
            + "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    }

    [GeneratedRegex("<style>(.*?)</style>", RegexOptions.Singleline)]
    private static partial Regex StyleBlock();

    [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex ScriptBlock();
}
