using System.Security.Claims;

namespace DurableTask.Dashboard.Auth;

/// <summary>
/// Claims of a dashboard sign-in. The credential the user signed in with travels inside the sign-in cookie, which is
/// encrypted and signed with ASP.NET Core data protection; it never reaches the browser's scripts (the cookie is HttpOnly).
/// </summary>
public static class DashboardClaims
{
    public const string Name = "name";
    public const string Subject = "sub";

    /// <summary><c>apikey</c> or <c>oidc</c>.</summary>
    public const string CredentialKind = "dashboard:credential-kind";

    /// <summary>The API key, or the access token for the scheduler.</summary>
    public const string Credential = "dashboard:credential";

    public const string ApiKeyKind = "apikey";
    public const string OidcKind = "oidc";

    public static string DisplayName(ClaimsPrincipal user) =>
        user.FindFirst(Name)?.Value ?? user.FindFirst("preferred_username")?.Value ?? user.FindFirst(Subject)?.Value ?? "signed in";
}
