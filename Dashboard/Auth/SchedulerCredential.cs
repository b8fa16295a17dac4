using System.Net.Http.Headers;
using System.Security.Claims;
using Microsoft.AspNetCore.Components.Authorization;

namespace DurableTask.Dashboard.Auth;

/// <summary>
/// The signed-in user's credential, added to every call the dashboard makes to the scheduler API, so the scheduler
/// decides with the user's own roles. In an interactive page the user comes from the circuit's authentication state;
/// in a plain HTTP endpoint (downloads) the endpoint hands over <c>HttpContext.User</c> with <see cref="Use"/>.
/// </summary>
public sealed class SchedulerCredential(IServiceProvider services)
{
    public const string ApiKeyHeader = "x-api-key";

    ClaimsPrincipal? _user;

    public void Use(ClaimsPrincipal user) => _user = user;

    public async Task<ClaimsPrincipal?> UserAsync()
    {
        if (_user is not null) return _user;
        if (services.GetService<AuthenticationStateProvider>() is not { } provider) return null;
        try
        {
            return (await provider.GetAuthenticationStateAsync()).User;
        }
        catch (InvalidOperationException)
        {
            // Outside a page (no authentication state was set for this scope): no user.
            return null;
        }
    }

    public async Task ApplyAsync(HttpRequestMessage request)
    {
        var user = await UserAsync();
        if (user?.Identity?.IsAuthenticated != true) return;
        Apply(request, user);
    }

    public static void Apply(HttpRequestMessage request, ClaimsPrincipal user)
    {
        var secret = user.FindFirst(DashboardClaims.Credential)?.Value;
        if (string.IsNullOrEmpty(secret)) return;
        switch (user.FindFirst(DashboardClaims.CredentialKind)?.Value)
        {
            case DashboardClaims.ApiKeyKind:
                request.Headers.Remove(ApiKeyHeader);
                request.Headers.TryAddWithoutValidation(ApiKeyHeader, secret);
                break;
            case DashboardClaims.OidcKind:
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
                break;
        }
    }
}
