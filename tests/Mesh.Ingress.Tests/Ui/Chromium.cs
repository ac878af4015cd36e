using Microsoft.Playwright;

namespace Mesh.Ingress.Tests.Ui;

/// <summary>Debian's chromium, driven headless by Playwright (no browser download: scripts/install-deps.sh test installs it).</summary>
public static class Chromium
{
    public const string Path = "/usr/bin/chromium";

    /// <summary>Fails (never skips) when chromium is missing: the browser tests are part of the suite.</summary>
    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        Assert.True(File.Exists(Path), $"{Path} is missing: the status page tests need Debian's chromium (scripts/install-deps.sh test installs it; or apt-get install chromium)");
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Path, Headless = true });
            return (playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }
}
