using System.Net;
using System.Security.Claims;
using DurableTask.Dashboard.Api;
using DurableTask.Dashboard.Auth;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// OpenID Connect sign-in in a real browser, through a real (local) identity provider, in front of a scheduler that
/// validates that provider's access tokens: the browser goes to the provider and back, the user lands signed in, and the
/// scheduler decides with the roles in the user's own access token.
/// </summary>
public sealed class OidcEndToEndTests(OidcDashboardFixture fx, BrowserFixture browser) : IClassFixture<OidcDashboardFixture>, IClassFixture<BrowserFixture>
{
    async Task<IPage> BrowserSignedInAtProviderAsync(TestIdentityProvider.User user)
    {
        var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = fx.DashboardAddress,
            // The dashboard's certificate is self-signed, made by the fixture.
            IgnoreHTTPSErrors = true,
            ViewportSize = new ViewportSize { Width = 1440, Height = 900 },
        });
        await context.AddCookiesAsync([new Microsoft.Playwright.Cookie { Name = TestIdentityProvider.UserCookie, Value = user.Subject, Url = fx.Provider.Issuer }]);
        return await context.NewPageAsync();
    }

    async Task<string> StartWaitingAsync(string prefix)
    {
        var id = $"{prefix}-{Guid.NewGuid():N}"[..20];
        await fx.ClientA.ScheduleNewOrchestrationInstanceAsync(Orchestrations.WaitForApproval, null, new StartOrchestrationOptions(id));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await fx.ClientA.WaitForInstanceStartAsync(id, cts.Token);
        return id;
    }

    [Fact]
    public async Task AReaderSignsInAtTheProviderAndTheSchedulerAppliesTheTokensRoles()
    {
        var id = await StartWaitingAsync("oidc-read");
        var page = await BrowserSignedInAtProviderAsync(OidcDashboardFixture.Reader);
        var visited = new List<string>();
        page.FrameNavigated += (_, frame) => { if (frame == page.MainFrame) visited.Add(frame.Url); };

        await page.GotoAsync("hubs/a/orchestrations");

        // Through the provider and back, to the page the browser asked for, signed in as the provider's user.
        await Expect(page.GetByTestId("orchestrations")).ToBeVisibleAsync();
        Assert.Empty(fx.Provider.Problems);
        Assert.Equal(fx.DashboardAddress + "hubs/a/orchestrations", page.Url);
        Assert.Contains(visited, u => u.StartsWith(fx.Provider.Issuer + "/authorize?", StringComparison.Ordinal));
        await Expect(page.GetByTestId("user-name")).ToHaveTextAsync("Alice Reader");
        await Expect(page.Locator($"[data-testid=row][data-instance-id='{id}']")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("auth-banner")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("start-new")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("bulk-bar")).ToHaveCountAsync(0);

        await page.GotoAsync($"hubs/a/orchestration?id={id}");
        await Expect(page.GetByTestId("properties")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("read-only")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("action-terminate")).ToHaveCountAsync(0);

        // The token grants hub a only: the scheduler refuses hub b for this user.
        await page.GotoAsync("hubs/b/orchestrations");
        await Expect(page.GetByTestId("error")).ToHaveTextAsync(
            "403 Forbidden: you lack the role reader, worker or contributor on task hub 'b' (this needs the Read permission).");

        // The access token the provider issued to this user is for the scheduler and carries the user's roles...
        var token = Assert.Single(fx.Provider.AccessTokens[OidcDashboardFixture.Reader.Subject]);
        var jwt = new JsonWebToken(token);
        Assert.Equal(fx.Provider.Issuer, jwt.Issuer);
        Assert.Equal([TestIdentityProvider.SchedulerAudience], jwt.Audiences);
        Assert.Equal(OidcDashboardFixture.Reader.Roles, jwt.Claims.Where(c => c.Type == "roles").Select(c => c.Value));

        // ...and with it the dashboard's API client may read but not terminate: the scheduler answers 403.
        using var scope = fx.Dashboard.Services.CreateScope();
        scope.ServiceProvider.GetRequiredService<SchedulerCredential>().Use(new ClaimsPrincipal(new ClaimsIdentity(
        [
            new Claim(DashboardClaims.Name, OidcDashboardFixture.Reader.Name),
            new Claim(DashboardClaims.CredentialKind, DashboardClaims.OidcKind),
            new Claim(DashboardClaims.Credential, token),
        ], "test")));
        var client = scope.ServiceProvider.GetRequiredService<SchedulerClient>();
        Assert.Equal(["a"], (await client.GetTaskHubsAsync()).Select(h => h.Name));
        var refused = await Assert.ThrowsAsync<SchedulerApiException>(() => client.TerminateAsync("a", id, "no", recursive: true));
        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal("403 Forbidden: you lack the role worker or contributor on task hub 'a' (this needs the ClientWrite permission).", refused.ToString());
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await fx.ClientA.GetInstanceAsync(id))!.RuntimeStatus);
    }

    [Fact]
    public async Task AContributorSignedInAtTheProviderTerminatesAnOrchestration()
    {
        var id = await StartWaitingAsync("oidc-ops");
        var page = await BrowserSignedInAtProviderAsync(OidcDashboardFixture.Contributor);
        await page.GotoAsync($"hubs/a/orchestration?id={id}");

        await Expect(page.GetByTestId("user-name")).ToHaveTextAsync("Bob Operator");
        Assert.Empty(fx.Provider.Problems);
        await page.GetByTestId("action-terminate").ClickAsync();
        await Expect(page.GetByTestId("confirm-dialog")).ToBeVisibleAsync();
        await page.GetByTestId("reason").FillAsync("stopped by bob");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Termination requested.");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var done = await fx.ClientA.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, done.RuntimeStatus);
        Assert.Equal("\"stopped by bob\"", done.SerializedOutput);
        Assert.Single(fx.Provider.AccessTokens[OidcDashboardFixture.Contributor.Subject]);
    }
}
