using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// OpenID Connect sign-in up to the identity provider: a tiny discovery document served by the test stands in for the
/// provider, and the dashboard must send an unauthenticated browser there with an authorization-code request (PKCE)
/// for the configured client and scopes. The provider's side (login, code exchange) is not run.
/// </summary>
public sealed class OidcSignInTests(AuthDashboardFixture fx) : IClassFixture<AuthDashboardFixture>
{
    [Fact]
    public async Task AnUnauthenticatedBrowserIsSentToTheIdentityProvider()
    {
        int idpPort = AuthDashboardFixture.FreePort(), web = AuthDashboardFixture.FreePort();
        var authority = $"http://127.0.0.1:{idpPort}";
        var idp = WebApplication.CreateBuilder();
        idp.WebHost.UseUrls(authority);
        await using var provider = idp.Build();
        provider.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = authority,
            ["authorization_endpoint"] = authority + "/authorize",
            ["token_endpoint"] = authority + "/token",
            ["jwks_uri"] = authority + "/jwks",
            ["response_types_supported"] = new[] { "code" },
            ["subject_types_supported"] = new[] { "public" },
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        provider.MapGet("/jwks", () => Results.Json(new { keys = Array.Empty<object>() }));
        await provider.StartAsync();

        await using var dashboard = DashboardApp.Build([
            $"--urls=http://127.0.0.1:{web}", $"--Scheduler:ApiAddress={fx.ApiAddress}", "--Logging:LogLevel:Default=Warning",
            "--Dashboard:Authentication:Mode=Oidc", $"--Dashboard:Authentication:Authority={authority}",
            "--Dashboard:Authentication:ClientId=dts-dashboard", "--Dashboard:Authentication:ClientSecret=not-used-here",
            "--Dashboard:Authentication:Scopes:0=api://scheduler/.default", "--Dashboard:Authentication:RequireHttpsMetadata=false",
        ]);
        await dashboard.StartAsync();

        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri($"http://127.0.0.1:{web}/") };
        using var page = await http.GetAsync("hubs/a/orchestrations");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        var signIn = page.Headers.Location!;
        Assert.Equal("/signin", new Uri(http.BaseAddress!, signIn).AbsolutePath);

        using var challenge = await http.GetAsync(signIn);
        Assert.Equal(HttpStatusCode.Redirect, challenge.StatusCode);
        var target = challenge.Headers.Location!;
        Assert.Equal(authority + "/authorize", target.GetLeftPart(UriPartial.Path));
        var query = QueryHelpers(target.Query);
        Assert.Equal("dts-dashboard", query["client_id"]);
        Assert.Equal("code", query["response_type"]);
        Assert.Equal($"http://127.0.0.1:{web}/signin-oidc", query["redirect_uri"]);
        Assert.Equal(["openid", "profile", "api://scheduler/.default"], query["scope"].Split(' '));
        Assert.Equal("S256", query["code_challenge_method"]);
        Assert.False(string.IsNullOrEmpty(query["code_challenge"]));
        Assert.False(string.IsNullOrEmpty(query["state"]));
        Assert.False(string.IsNullOrEmpty(query["nonce"]));
    }

    static Dictionary<string, string> QueryHelpers(string query) =>
        Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query).ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
}
