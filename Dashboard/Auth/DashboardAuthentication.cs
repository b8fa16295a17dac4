using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using DurableTask.Dashboard.Api;
using Microsoft.AspNetCore.Mvc;

namespace DurableTask.Dashboard.Auth;

/// <summary>
/// Sign-in for the dashboard: a cookie session holding the user's credential for the scheduler (an API key entered on
/// the sign-in page, or the access token of an OpenID Connect sign-in), asked for whenever the scheduler has
/// authentication on. Every API call carries that credential, so the scheduler enforces the user's own roles.
/// </summary>
public static class DashboardAuthentication
{
    public const string CookieScheme = "DashboardCookie";
    public const string OidcScheme = "oidc";
    public const string SignInPath = "/signin";
    public const string SignOutPath = "/signout";
    public const string ReturnUrlParameter = "returnUrl";

    public static WebApplicationBuilder AddDashboardAuthentication(this WebApplicationBuilder builder, Uri apiAddress)
    {
        var settings = new DashboardAuthenticationOptions();
        builder.Configuration.GetSection(DashboardAuthenticationOptions.Section).Bind(settings);
        var modes = settings.Modes();
        var services = builder.Services;
        services.AddSingleton(settings);
        services.AddSingleton(new SignInConfiguration(modes, settings.DisplayName));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<SchedulerAuthProbe>();
        services.AddScoped<SchedulerCredential>();
        services.AddScoped<UserAccess>();
        services.AddHttpClient(SchedulerAuthProbe.HttpClientName, c =>
        {
            c.BaseAddress = apiAddress;
            c.Timeout = TimeSpan.FromSeconds(10);
        });

        var keysPath = builder.Configuration["Dashboard:DataProtection:KeysPath"];
        var dataProtection = services.AddDataProtection().SetApplicationName("DurableTask.Dashboard");
        if (!string.IsNullOrWhiteSpace(keysPath)) dataProtection.PersistKeysToFileSystem(new DirectoryInfo(keysPath));

        var authentication = services.AddAuthentication(o =>
        {
            o.DefaultScheme = CookieScheme;
            o.DefaultChallengeScheme = CookieScheme;
        });
        authentication.AddCookie(CookieScheme, o =>
        {
            o.Cookie.Name = ".DurableTask.Dashboard";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.ExpireTimeSpan = settings.SessionLifetime;
            o.SlidingExpiration = true;
            o.LoginPath = SignInPath;
            o.LogoutPath = SignOutPath;
            o.AccessDeniedPath = SignInPath;
            o.ReturnUrlParameter = ReturnUrlParameter;
            o.Events.OnRedirectToLogin = context =>
            {
                // Script and download requests get a status, pages get the sign-in page.
                var path = context.Request.Path;
                if (path.StartsWithSegments("/_blazor") || path.StartsWithSegments("/download")) context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                else context.Response.Redirect(context.RedirectUri);
                return Task.CompletedTask;
            };
        });

        if (modes.HasFlag(SignInModes.Oidc))
        {
            authentication.AddOpenIdConnect(OidcScheme, o =>
            {
                o.SignInScheme = CookieScheme;
                if (!string.IsNullOrWhiteSpace(settings.Authority)) o.Authority = settings.Authority;
                if (!string.IsNullOrWhiteSpace(settings.MetadataAddress)) o.MetadataAddress = settings.MetadataAddress;
                o.RequireHttpsMetadata = settings.RequireHttpsMetadata;
                o.ClientId = settings.ClientId;
                o.ClientSecret = string.IsNullOrWhiteSpace(settings.ClientSecret) ? null : settings.ClientSecret;
                o.ResponseType = "code";
                o.UsePkce = true;
                o.CallbackPath = settings.CallbackPath;
                o.MapInboundClaims = false;
                o.SaveTokens = false;
                o.TokenValidationParameters.NameClaimType = DashboardClaims.Name;
                o.Scope.Clear();
                foreach (var scope in new[] { "openid", "profile" }.Concat(settings.Scopes).Where(s => !string.IsNullOrWhiteSpace(s)).Distinct(StringComparer.Ordinal))
                    o.Scope.Add(scope);
                o.Events.OnTokenValidated = context =>
                {
                    var accessToken = context.TokenEndpointResponse?.AccessToken;
                    if (string.IsNullOrEmpty(accessToken))
                    {
                        context.Fail("The identity provider returned no access token for the scheduler.");
                        return Task.CompletedTask;
                    }

                    if (context.Principal?.Identity is ClaimsIdentity identity)
                    {
                        identity.AddClaim(new Claim(DashboardClaims.CredentialKind, DashboardClaims.OidcKind));
                        identity.AddClaim(new Claim(DashboardClaims.Credential, accessToken));
                    }

                    return Task.CompletedTask;
                };
            });
        }

        services.AddSingleton<IAuthorizationHandler, SignedInWhenRequiredHandler>();
        services.AddAuthorization(o => o.FallbackPolicy = new AuthorizationPolicyBuilder().AddRequirements(new SignedInWhenRequired()).Build());
        return builder;
    }

    /// <summary>Sign-in and sign-out pages (plain HTML forms with antiforgery tokens).</summary>
    public static WebApplication MapDashboardSignIn(this WebApplication app)
    {
        app.MapGet(SignInPath, async (HttpContext http, SignInConfiguration config, SchedulerAuthProbe probe, IAntiforgery antiforgery, string? returnUrl, string? error) =>
        {
            var target = LocalUrl(returnUrl);
            if (config.Modes == SignInModes.Oidc && error is null && !AccessControlOpen(await probe.GetAsync(http.RequestAborted)))
                return Results.Challenge(new AuthenticationProperties { RedirectUri = target }, [OidcScheme]);
            var state = await probe.GetAsync(http.RequestAborted);
            return Results.Content(SignInPage.Render(config, antiforgery.GetAndStoreTokens(http), target, error, state,
                http.User.Identity?.IsAuthenticated == true ? DashboardClaims.DisplayName(http.User) : null), "text/html; charset=utf-8");
        }).AllowAnonymous();

        app.MapPost(SignInPath, async (HttpContext http, SignInConfiguration config, IHttpClientFactory factory,
            [FromForm(Name = "apiKey")] string? apiKey, [FromForm(Name = "returnUrl")] string? returnUrl) =>
        {
            var target = LocalUrl(returnUrl);
            if (!config.Modes.HasFlag(SignInModes.ApiKey)) return Results.Redirect(SignInPath);
            if (string.IsNullOrWhiteSpace(apiKey)) return Retry("Enter an API key.", target);
            var (principal, problem) = await CheckApiKeyAsync(factory, apiKey.Trim(), http.RequestAborted);
            if (principal is null) return Retry(problem!, target);
            await http.SignInAsync(CookieScheme, principal, new AuthenticationProperties { IsPersistent = false });
            return Results.LocalRedirect(target);
        }).AllowAnonymous();

        app.MapGet(SignInPath + "/oidc", (SignInConfiguration config, string? returnUrl) =>
            config.Modes.HasFlag(SignInModes.Oidc)
                ? Results.Challenge(new AuthenticationProperties { RedirectUri = LocalUrl(returnUrl) }, [OidcScheme])
                : Results.NotFound()).AllowAnonymous();

        app.MapGet(SignOutPath, (HttpContext http, IAntiforgery antiforgery) =>
            Results.Content(SignInPage.RenderSignOut(antiforgery.GetAndStoreTokens(http),
                http.User.Identity?.IsAuthenticated == true ? DashboardClaims.DisplayName(http.User) : null), "text/html; charset=utf-8"))
            .AllowAnonymous();

        app.MapPost(SignOutPath, async (HttpContext http, [FromForm(Name = "confirm")] string? confirm) =>
        {
            await http.SignOutAsync(CookieScheme);
            return Results.LocalRedirect(SignInPath);
        }).AllowAnonymous();
        return app;
    }

    static bool AccessControlOpen(SchedulerAuthentication state) => state == SchedulerAuthentication.Off;

    static IResult Retry(string error, string target) =>
        Results.LocalRedirect($"{SignInPath}?{ReturnUrlParameter}={Uri.EscapeDataString(target)}&error={Uri.EscapeDataString(error)}");

    /// <summary>A path on this site to go back to; anything else (other hosts, <c>//evil</c>) becomes <c>/</c>.</summary>
    public static string LocalUrl(string? url)
    {
        if (string.IsNullOrEmpty(url) || url[0] != '/') return "/";
        if (url.Length > 1 && (url[1] == '/' || url[1] == '\\')) return "/";
        if (url.Any(char.IsControl)) return "/";
        return url;
    }

    /// <summary>Asks the scheduler who the key belongs to (<c>GET /api/v1/me</c>); a key it refuses cannot sign in.</summary>
    static async Task<(ClaimsPrincipal? Principal, string? Problem)> CheckApiKeyAsync(IHttpClientFactory factory, string key, CancellationToken ct)
    {
        using var http = factory.CreateClient(SchedulerAuthProbe.HttpClientName);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "api/v1/me");
            request.Headers.TryAddWithoutValidation(SchedulerCredential.ApiKeyHeader, key);
            using var response = await http.SendAsync(request, ct);
            string name;
            switch (response.StatusCode)
            {
                case HttpStatusCode.OK:
                    var me = await response.Content.ReadFromJsonAsync<CallerIdentity>(new JsonSerializerOptions(JsonSerializerDefaults.Web), ct);
                    name = me?.Principal ?? "apikey";
                    break;
                case HttpStatusCode.Unauthorized:
                    return (null, "The scheduler does not accept this API key.");
                case HttpStatusCode.Forbidden:
                    return (null, "The scheduler knows this API key, but it holds no role on any task hub.");
                default:
                    return (null, $"The scheduler API answered {(int)response.StatusCode} {response.ReasonPhrase}.");
            }

            var identity = new ClaimsIdentity(
            [
                new Claim(DashboardClaims.Subject, name),
                new Claim(DashboardClaims.Name, name),
                new Claim(DashboardClaims.CredentialKind, DashboardClaims.ApiKeyKind),
                new Claim(DashboardClaims.Credential, key),
            ], CookieScheme, DashboardClaims.Name, null);
            return (new ClaimsPrincipal(identity), null);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException && !ct.IsCancellationRequested)
        {
            return (null, $"The scheduler API at {http.BaseAddress} did not answer: {e.Message}");
        }
    }
}

/// <summary>The sign-in methods the dashboard offers.</summary>
public sealed record SignInConfiguration(SignInModes Modes, string OidcDisplayName);

/// <summary>Every page needs a signed-in user, unless the scheduler has authentication off.</summary>
public sealed class SignedInWhenRequired : IAuthorizationRequirement;

public sealed class SignedInWhenRequiredHandler(SchedulerAuthProbe probe) : AuthorizationHandler<SignedInWhenRequired>
{
    static readonly string[] OpenPaths = ["/health", "/alive"];

    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, SignedInWhenRequired requirement)
    {
        if (context.User.Identity?.IsAuthenticated == true)
        {
            context.Succeed(requirement);
            return;
        }

        var http = context.Resource as HttpContext;
        if (http is not null && OpenPaths.Any(p => http.Request.Path.StartsWithSegments(p)))
        {
            context.Succeed(requirement);
            return;
        }

        if (await probe.GetAsync(http?.RequestAborted ?? default) == SchedulerAuthentication.Off) context.Succeed(requirement);
    }
}
