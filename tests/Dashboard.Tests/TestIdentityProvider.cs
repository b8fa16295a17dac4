using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// A minimal OpenID Connect provider on a loopback port: discovery document, JWKS (an RSA key made at start),
/// an authorization endpoint that approves at once, and a token endpoint that checks the code, the client secret and the
/// PKCE verifier. Who signs in is chosen by the browser's <see cref="UserCookie"/> at the provider (as if the user had
/// signed in there before); users are registered with <see cref="AddUser"/>. Access tokens are JWTs for the scheduler:
/// <c>iss</c> = this provider, <c>aud</c> = <see cref="SchedulerAudience"/> when its scope was asked for, the user's
/// <c>roles</c>, <c>sub</c> and <c>name</c>.
/// </summary>
public sealed class TestIdentityProvider : IAsyncDisposable
{
    public const string UserCookie = "idp-user";
    public const string ClientId = "dts-dashboard";
    public const string ClientSecret = "dashboard-secret-3f9a1c";
    public const string SchedulerAudience = "api://dts-scheduler";
    public const string SchedulerScope = SchedulerAudience + "/access";

    readonly RSA _key = RSA.Create(2048);
    readonly SigningCredentials _signing;
    readonly ConcurrentDictionary<string, User> _users = new();
    readonly ConcurrentDictionary<string, Grant> _codes = new();
    readonly ConcurrentQueue<string> _problems = new();
    WebApplication? _app;

    public sealed record User(string Subject, string Name, string[] Roles);

    sealed record Grant(string ClientId, string RedirectUri, string CodeChallenge, string? Nonce, string Scope, User User);

    TestIdentityProvider() => _signing = new SigningCredentials(new RsaSecurityKey(_key) { KeyId = "test-idp-1" }, SecurityAlgorithms.RsaSha256);

    /// <summary>The issuer (no trailing slash); the discovery document is under it.</summary>
    public string Issuer { get; private set; } = "";

    /// <summary>Access tokens issued, by subject, newest last.</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<string>> AccessTokens { get; } = new();

    /// <summary>Requests the provider refused, with the reason (a test can show them when a sign-in does not complete).</summary>
    public IEnumerable<string> Problems => _problems;

    public void AddUser(User user) => _users[user.Subject] = user;

    public static async Task<TestIdentityProvider> StartAsync()
    {
        var provider = new TestIdentityProvider();
        var port = AuthDashboardFixture.FreePort();
        provider.Issuer = $"http://127.0.0.1:{port}";
        var builder = WebApplication.CreateBuilder([$"--urls={provider.Issuer}"]);
        builder.Logging.ClearProviders();
        provider._app = builder.Build();
        provider.Map(provider._app);
        await provider._app.StartAsync();
        return provider;
    }

    /// <summary>A token for an application (not a browser user), signed like the ones the token endpoint issues.</summary>
    public string AccessToken(string subject, string name, params string[] roles) => CreateAccessToken(new User(subject, name, roles), SchedulerScope);

    void Map(WebApplication app)
    {
        app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = Issuer,
            ["authorization_endpoint"] = Issuer + "/authorize",
            ["token_endpoint"] = Issuer + "/token",
            ["jwks_uri"] = Issuer + "/jwks",
            ["response_types_supported"] = new[] { "code" },
            ["response_modes_supported"] = new[] { "query", "form_post" },
            ["subject_types_supported"] = new[] { "public" },
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
            ["code_challenge_methods_supported"] = new[] { "S256" },
            ["token_endpoint_auth_methods_supported"] = new[] { "client_secret_post", "client_secret_basic" },
            ["scopes_supported"] = new[] { "openid", "profile", SchedulerScope },
        }));

        var publicKey = _key.ExportParameters(includePrivateParameters: false);
        app.MapGet("/jwks", () => Results.Json(new
        {
            keys = new[]
            {
                new { kty = "RSA", use = "sig", alg = "RS256", kid = "test-idp-1", n = Base64UrlEncoder.Encode(publicKey.Modulus), e = Base64UrlEncoder.Encode(publicKey.Exponent) },
            },
        }));

        app.MapGet("/authorize", (HttpContext http) =>
        {
            var q = http.Request.Query;
            string clientId = q["client_id"].ToString(), redirectUri = q["redirect_uri"].ToString(), state = q["state"].ToString();
            if (clientId != ClientId) return Refuse($"authorize: unknown client_id '{clientId}'");
            if (q["response_type"] != "code") return Refuse($"authorize: response_type '{q["response_type"]}' is not 'code'");
            if (string.IsNullOrEmpty(q["code_challenge"]) || q["code_challenge_method"] != "S256")
                return Refuse("authorize: no PKCE code_challenge with method S256");
            if (!Uri.TryCreate(redirectUri, UriKind.Absolute, out _)) return Refuse($"authorize: redirect_uri '{redirectUri}' is not absolute");
            var scope = q["scope"].ToString();
            if (!scope.Split(' ').Contains("openid")) return Refuse($"authorize: scope '{scope}' lacks openid");
            if (!http.Request.Cookies.TryGetValue(UserCookie, out var subject) || !_users.TryGetValue(subject, out var user))
                return Refuse("authorize: no signed-in user at the provider");

            var code = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
            _codes[code] = new Grant(clientId, redirectUri, q["code_challenge"].ToString(), q["nonce"], scope, user);
            if (q["response_mode"] == "form_post")
            {
                var html = HtmlEncoder.Default;
                return Results.Content(
                    $"""
                    <!doctype html><html><body onload="document.forms[0].submit()">
                    <form method="post" action="{html.Encode(redirectUri)}">
                    <input type="hidden" name="code" value="{html.Encode(code)}">
                    <input type="hidden" name="state" value="{html.Encode(state)}">
                    <noscript><button type="submit">Continue</button></noscript>
                    </form></body></html>
                    """, "text/html; charset=utf-8");
            }

            var separator = redirectUri.Contains('?') ? '&' : '?';
            return Results.Redirect($"{redirectUri}{separator}code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(state)}");
        });

        app.MapPost("/token", async (HttpContext http) =>
        {
            var form = await http.Request.ReadFormAsync();
            string? clientId = form["client_id"], clientSecret = form["client_secret"];
            var basic = http.Request.Headers.Authorization.ToString();
            if (basic.StartsWith("Basic ", StringComparison.Ordinal))
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(basic[6..])).Split(':', 2);
                (clientId, clientSecret) = (Uri.UnescapeDataString(pair[0]), Uri.UnescapeDataString(pair[1]));
            }

            if (clientId != ClientId || clientSecret != ClientSecret) return TokenError("invalid_client", $"token: client '{clientId}' with a wrong or no secret");
            if (form["grant_type"] != "authorization_code") return TokenError("unsupported_grant_type", $"token: grant_type '{form["grant_type"]}'");
            if (!_codes.TryRemove(form["code"].ToString(), out var grant)) return TokenError("invalid_grant", "token: unknown or used code");
            if (grant.ClientId != clientId || grant.RedirectUri != form["redirect_uri"])
                return TokenError("invalid_grant", $"token: redirect_uri '{form["redirect_uri"]}' differs from '{grant.RedirectUri}'");
            var verifier = form["code_verifier"].ToString();
            if (string.IsNullOrEmpty(verifier) || Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))) != grant.CodeChallenge)
                return TokenError("invalid_grant", "token: the PKCE code_verifier does not match the code_challenge");

            var accessToken = CreateAccessToken(grant.User, grant.Scope);
            AccessTokens.GetOrAdd(grant.User.Subject, _ => new ConcurrentQueue<string>()).Enqueue(accessToken);
            var half = SHA256.HashData(Encoding.ASCII.GetBytes(accessToken))[..16];
            var idClaims = new Dictionary<string, object>
            {
                ["sub"] = grant.User.Subject,
                ["name"] = grant.User.Name,
                ["at_hash"] = Base64UrlEncoder.Encode(half),
            };
            if (!string.IsNullOrEmpty(grant.Nonce)) idClaims["nonce"] = grant.Nonce;
            var idToken = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = Issuer,
                Audience = ClientId,
                IssuedAt = DateTime.UtcNow,
                Expires = DateTime.UtcNow.AddMinutes(10),
                Claims = idClaims,
                SigningCredentials = _signing,
            });
            return Results.Json(new Dictionary<string, object>
            {
                ["token_type"] = "Bearer",
                ["access_token"] = accessToken,
                ["id_token"] = idToken,
                ["expires_in"] = 1800,
                ["scope"] = grant.Scope,
            });
        });
    }

    string CreateAccessToken(User user, string scope)
    {
        var claims = new Dictionary<string, object> { ["sub"] = user.Subject, ["name"] = user.Name, ["roles"] = user.Roles, ["scp"] = "access" };
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            // Only a token asked for with the scheduler's scope is for the scheduler.
            Audience = scope.Split(' ').Contains(SchedulerScope) ? SchedulerAudience : Issuer + "/userinfo",
            IssuedAt = DateTime.UtcNow,
            Expires = DateTime.UtcNow.AddMinutes(30),
            Claims = claims,
            SigningCredentials = _signing,
        });
    }

    IResult Refuse(string problem)
    {
        _problems.Enqueue(problem);
        return Results.Text(problem, statusCode: (int)HttpStatusCode.BadRequest);
    }

    IResult TokenError(string error, string problem)
    {
        _problems.Enqueue(problem);
        return Results.Json(new { error, error_description = problem }, statusCode: (int)HttpStatusCode.BadRequest);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        _key.Dispose();
    }
}
