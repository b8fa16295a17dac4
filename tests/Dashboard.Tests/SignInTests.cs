using System.Net;
using System.Security.Claims;
using DurableTask.Dashboard.Api;
using DurableTask.Dashboard.Auth;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// The dashboard in front of a scheduler with API-key authentication, in a real browser: sign-in is required, every call
/// carries the signed-in key, and the pages show only the actions the key's roles allow.
/// </summary>
public sealed class SignInTests(AuthDashboardFixture fx, BrowserFixture browser) : IClassFixture<AuthDashboardFixture>, IClassFixture<BrowserFixture>
{
    async Task<IPage> NewPageAsync()
    {
        var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = fx.DashboardAddress,
            ViewportSize = new ViewportSize { Width = 1440, Height = 900 },
        });
        return await context.NewPageAsync();
    }

    async Task<IPage> SignInAsync(string path, string key)
    {
        var page = await NewPageAsync();
        await page.GotoAsync(path);
        await Expect(page.GetByTestId("signin-form")).ToBeVisibleAsync();
        await page.GetByTestId("signin-key").FillAsync(key);
        await page.GetByTestId("signin-submit").ClickAsync();
        return page;
    }

    async Task<string> StartWaitingAsync(DurableTaskClient client, string prefix)
    {
        var id = $"{prefix}-{Guid.NewGuid():N}"[..20];
        await client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.WaitForApproval, null, new StartOrchestrationOptions(id));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await client.WaitForInstanceStartAsync(id, cts.Token);
        return id;
    }

    [Fact]
    public async Task AnUnauthenticatedBrowserIsSentToTheSignInPage()
    {
        var page = await NewPageAsync();
        await page.GotoAsync("hubs/a/orchestrations?status=Running");
        await Expect(page.GetByTestId("signin-form")).ToBeVisibleAsync();
        var url = new Uri(page.Url);
        Assert.Equal("/signin", url.AbsolutePath);
        Assert.Contains("returnUrl=" + Uri.EscapeDataString("/hubs/a/orchestrations?status=Running"), url.Query);
        await Expect(page.GetByTestId("auth-banner")).ToHaveCountAsync(0);

        // A key the scheduler does not know is refused on the sign-in page.
        await page.GetByTestId("signin-key").FillAsync("not-a-key");
        await page.GetByTestId("signin-submit").ClickAsync();
        await Expect(page.GetByTestId("signin-error")).ToHaveTextAsync("The scheduler does not accept this API key.");
        // A known key without any role cannot sign in either.
        await page.GetByTestId("signin-key").FillAsync(AuthDashboardFixture.NoRoleKey);
        await page.GetByTestId("signin-submit").ClickAsync();
        await Expect(page.GetByTestId("signin-error")).ToContainTextAsync("holds no role on any task hub");

        // Without a sign-in cookie the circuit and the downloads are refused too, and the sign-in form needs its antiforgery token.
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(fx.DashboardAddress) };
        using (var response = await http.GetAsync("download/a/payload?id=x&kind=input"))
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using (var response = await http.PostAsync("_blazor/negotiate?negotiateVersion=1", null))
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using (var response = await http.GetAsync("hubs/a"))
        {
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            Assert.StartsWith("/signin?returnUrl=", response.Headers.Location!.OriginalString.Replace(fx.DashboardAddress.TrimEnd('/'), ""));
        }

        using (var response = await http.PostAsync("signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["apiKey"] = AuthDashboardFixture.ContributorKey })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.DoesNotContain(response.Headers, h => h.Key == "Set-Cookie" && h.Value.Any(v => v.StartsWith(".DurableTask.Dashboard=", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public async Task AReaderSeesOrchestrationsButNoManagementActions()
    {
        var id = await StartWaitingAsync(fx.ClientA, "read");
        var page = await SignInAsync("hubs/a/orchestrations", AuthDashboardFixture.ReaderKey);

        // Back where the browser wanted to go, signed in as the key's principal, with the list.
        await Expect(page.GetByTestId("orchestrations")).ToBeVisibleAsync();
        Assert.EndsWith("/hubs/a/orchestrations", new Uri(page.Url).AbsolutePath);
        await Expect(page.GetByTestId("user-name")).ToHaveTextAsync("apikey:reader");
        await Expect(page.Locator($"[data-testid=row][data-instance-id='{id}']")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("auth-banner")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("start-new")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("bulk-bar")).ToHaveCountAsync(0);

        await page.GotoAsync($"hubs/a/orchestration?id={id}");
        await Expect(page.GetByTestId("properties")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("read-only")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("action-terminate")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("action-suspend")).ToHaveCountAsync(0);
        await page.GotoAsync("hubs/a/start");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("needs the role worker or contributor on task hub a");
        await Expect(page.GetByTestId("start-form")).ToHaveCountAsync(0);

        // A terminate sent through the dashboard's API client with the reader's credential is refused by the scheduler.
        using var scope = fx.Dashboard.Services.CreateScope();
        scope.ServiceProvider.GetRequiredService<SchedulerCredential>().Use(SignedIn(DashboardClaims.ApiKeyKind, AuthDashboardFixture.ReaderKey));
        var client = scope.ServiceProvider.GetRequiredService<SchedulerClient>();
        var refused = await Assert.ThrowsAsync<SchedulerApiException>(() => client.TerminateAsync("a", id, "no", recursive: true));
        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal("403 Forbidden: you lack the role worker or contributor on task hub 'a' (this needs the ClientWrite permission).", refused.ToString());
        var purge = await Assert.ThrowsAsync<SchedulerApiException>(() => client.PurgeAsync("a", id, recursive: true));
        Assert.Contains("lack the role contributor on task hub 'a'", purge.ToString());
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await fx.ClientA.GetInstanceAsync(id))!.RuntimeStatus);

        // Sign out: back to the sign-in page, and the pages ask for a sign-in again.
        await page.GotoAsync("hubs/a");
        await page.GetByTestId("signout").ClickAsync();
        await page.GetByTestId("signout-submit").ClickAsync();
        await Expect(page.GetByTestId("signin-form")).ToBeVisibleAsync();
        await page.GotoAsync("hubs/a");
        await Expect(page.GetByTestId("signin-form")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task AContributorTerminatesAnOrchestration()
    {
        var id = await StartWaitingAsync(fx.ClientA, "ops");
        var page = await SignInAsync($"hubs/a/orchestration?id={id}", AuthDashboardFixture.ContributorKey);
        await Expect(page.GetByTestId("user-name")).ToHaveTextAsync("apikey:ops");
        await page.GetByTestId("action-terminate").ClickAsync();
        await Expect(page.GetByTestId("confirm-dialog")).ToBeVisibleAsync();
        await page.GetByTestId("reason").FillAsync("stopped by ops");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Termination requested.");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var done = await fx.ClientA.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, done.RuntimeStatus);
        Assert.Equal("\"stopped by ops\"", done.SerializedOutput);

        // A contributor sees every action, purge included, on the finished instance.
        await page.GetByTestId("reload").ClickAsync();
        await Expect(page.GetByTestId("action-purge")).ToBeVisibleAsync();
        await page.GotoAsync("hubs/a/orchestrations");
        await Expect(page.GetByTestId("bulk-purge")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("start-new")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task AWorkerOnHubACannotSeeHubB()
    {
        var inA = await StartWaitingAsync(fx.ClientA, "wa");
        var inB = await StartWaitingAsync(fx.ClientB, "wb");
        var page = await SignInAsync("hubs/a/orchestrations", AuthDashboardFixture.WorkerAKey);
        await Expect(page.Locator($"[data-testid=row][data-instance-id='{inA}']")).ToBeVisibleAsync();
        // Worker: client operations yes, purge (Admin) no.
        await Expect(page.GetByTestId("bulk-terminate")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("bulk-purge")).ToHaveCountAsync(0);

        await page.GotoAsync("hubs/b/orchestrations");
        await Expect(page.GetByTestId("error")).ToHaveTextAsync(
            "403 Forbidden: you lack the role reader, worker or contributor on task hub 'b' (this needs the Read permission).");
        await Expect(page.GetByTestId("row")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("bulk-bar")).ToHaveCountAsync(0);
        await page.GotoAsync($"hubs/b/orchestration?id={inB}");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("task hub 'b'");
        await Expect(page.GetByTestId("properties")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("instance-name")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task ACredentialTheSchedulerNoLongerAcceptsAsksForANewSignIn()
    {
        using var scope = fx.Dashboard.Services.CreateScope();
        scope.ServiceProvider.GetRequiredService<SchedulerCredential>().Use(SignedIn(DashboardClaims.ApiKeyKind, "revoked-key"));
        var client = scope.ServiceProvider.GetRequiredService<SchedulerClient>();
        var refused = await Assert.ThrowsAsync<SchedulerApiException>(() => client.GetTaskHubsAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Contains("Sign in again", refused.ToString());
    }

    static ClaimsPrincipal SignedIn(string kind, string secret) => new(new ClaimsIdentity(
    [
        new Claim(DashboardClaims.Name, "test"),
        new Claim(DashboardClaims.CredentialKind, kind),
        new Claim(DashboardClaims.Credential, secret),
    ], "test"));
}
