using Microsoft.Playwright;

namespace DurableTask.Dashboard.Tests;

/// <summary>Debian's chromium driven by Playwright (the browser comes from apt, never from a Playwright download).</summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var executable = FindChromium()
            ?? throw new InvalidOperationException("chromium is not installed: run 'apt-get install -y chromium' (.ci/run does)");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = executable,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        Assertions.SetDefaultExpectTimeout(20_000);
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
    }

    static string? FindChromium()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var name in new[] { "chromium", "chromium-browser" })
            {
                var path = Path.Combine(dir, name);
                if (File.Exists(path)) return path;
            }
        }

        return null;
    }

    /// <summary>The repository root: the nearest folder above the test binaries that holds Aspire.sln.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Aspire.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"no Aspire.sln above {AppContext.BaseDirectory}");
    }
}
