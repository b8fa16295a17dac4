namespace DurableTask.Dashboard.Auth;

[Flags]
public enum SignInModes
{
    None = 0,
    ApiKey = 1,
    Oidc = 2,
}

/// <summary>
/// How people sign in to the dashboard, bound from <c>Dashboard:Authentication</c>. Sign-in is asked for only when the
/// scheduler has authentication on; with the scheduler's authentication off the dashboard is open (and says so).
/// <code>
/// "Dashboard": { "Authentication": {
///   "Mode": "Oidc",                                    // ApiKey (default) | Oidc | Oidc,ApiKey
///   "Authority": "https://login.microsoftonline.com/{tenant}/v2.0",
///   "ClientId": "...", "ClientSecret": "...",
///   "Scopes": [ "api://{scheduler-app-id}/.default" ]
/// } }
/// </code>
/// </summary>
public sealed class DashboardAuthenticationOptions
{
    public const string Section = "Dashboard:Authentication";

    /// <summary><c>ApiKey</c> (a sign-in page for one of the scheduler's API keys), <c>Oidc</c>, or both.</summary>
    public string Mode { get; set; } = "ApiKey";

    /// <summary>OpenID Connect issuer (its discovery document is <c>{Authority}/.well-known/openid-configuration</c>).</summary>
    public string? Authority { get; set; }

    /// <summary>Discovery document address, when it is not under the authority.</summary>
    public string? MetadataAddress { get; set; }

    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>Scopes asked for besides <c>openid</c> and <c>profile</c>; include the scheduler API's scope so the access token is for the scheduler.</summary>
    public List<string> Scopes { get; set; } = new();

    /// <summary>Fetch the discovery document only over https (turn off only for a local test issuer).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>Where the identity provider sends the browser back to (register it as a redirect URI).</summary>
    public string CallbackPath { get; set; } = "/signin-oidc";

    /// <summary>The name on the sign-in button.</summary>
    public string DisplayName { get; set; } = "Sign in with your organisation";

    /// <summary>How long a sign-in lasts without use (sliding); an expired access token is refused by the scheduler earlier.</summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);

    public SignInModes Modes()
    {
        var modes = SignInModes.None;
        foreach (var part in (Mode ?? "").Split([',', '+', ';', ' '], StringSplitOptions.RemoveEmptyEntries))
        {
            modes |= part.ToLowerInvariant() switch
            {
                "apikey" or "apikeys" => SignInModes.ApiKey,
                "oidc" or "openidconnect" => SignInModes.Oidc,
                _ => throw new InvalidOperationException($"Dashboard:Authentication:Mode '{Mode}' is not supported: use ApiKey, Oidc or Oidc,ApiKey."),
            };
        }

        if (modes == SignInModes.None) modes = SignInModes.ApiKey;
        if (modes.HasFlag(SignInModes.Oidc))
        {
            if (string.IsNullOrWhiteSpace(Authority) && string.IsNullOrWhiteSpace(MetadataAddress))
                throw new InvalidOperationException("Dashboard:Authentication:Authority (or :MetadataAddress) is required for OpenID Connect sign-in.");
            if (string.IsNullOrWhiteSpace(ClientId))
                throw new InvalidOperationException("Dashboard:Authentication:ClientId is required for OpenID Connect sign-in.");
        }

        return modes;
    }
}
