namespace DurableTask.Scheduler.Security;

/// <summary>
/// How callers prove who they are, bound from <c>Scheduler:Authentication</c>.
/// <code>
/// "Authentication": {
///   "Mode": "Jwt,ApiKey",                  // None | Jwt | ApiKey | Jwt,ApiKey
///   "AllowAnonymousOnNetwork": false,       // None on a non-loopback address needs this
///   "Jwt": { "Authority": "https://login.microsoftonline.com/{tenant}/v2.0", "Audiences": [ "api://my-scheduler" ],
///            "Issuers": [], "SymmetricKeys": [], "PublicKeys": [], "RoleClaimType": "roles" },
///   "ApiKeys": [ { "Name": "orders-worker", "Hash": "sha256:9f86d0...", "Roles": [ "worker:orders" ] } ]
/// }
/// </code>
/// </summary>
public sealed class SchedulerAuthenticationOptions
{
    public const string Section = "Scheduler:Authentication";

    /// <summary><c>None</c>, <c>Jwt</c>, <c>ApiKey</c> or both (<c>Jwt,ApiKey</c>). Unset means <c>None</c>.</summary>
    public string? Mode { get; set; }

    /// <summary>Lets mode <c>None</c> serve on a non-loopback address (an emulator container on a private network).</summary>
    public bool AllowAnonymousOnNetwork { get; set; }

    public JwtSettings Jwt { get; set; } = new();

    public List<ApiKeySettings> ApiKeys { get; set; } = new();
}

public sealed class JwtSettings
{
    /// <summary>OpenID Connect issuer; its discovery document and signing keys are fetched from <c>{Authority}/.well-known/openid-configuration</c>.</summary>
    public string? Authority { get; set; }

    /// <summary>Discovery document address, when it is not under the authority.</summary>
    public string? MetadataAddress { get; set; }

    /// <summary>Fetch metadata only over https (turn off only for a local test issuer).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>Accepted <c>aud</c> values (at least one is required).</summary>
    public List<string> Audiences { get; set; } = new();

    /// <summary>Single audience, added to <see cref="Audiences"/>.</summary>
    public string? Audience { get; set; }

    /// <summary>Accepted <c>iss</c> values. Required with configured keys; with an authority the discovery document's issuer is used when empty.</summary>
    public List<string> Issuers { get; set; } = new();

    /// <summary>Single issuer, added to <see cref="Issuers"/>.</summary>
    public string? Issuer { get; set; }

    /// <summary>HMAC signing keys, base64 (at least 32 bytes each).</summary>
    public List<string> SymmetricKeys { get; set; } = new();

    /// <summary>RSA or EC public keys: PEM text (<c>-----BEGIN PUBLIC KEY-----</c>) or a path to a PEM file.</summary>
    public List<string> PublicKeys { get; set; } = new();

    /// <summary>Claim carrying role values (Entra ID app roles use <c>roles</c>).</summary>
    public string RoleClaimType { get; set; } = "roles";

    /// <summary>Tolerated clock difference when checking <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromMinutes(2);
}

public sealed class ApiKeySettings
{
    /// <summary>Name of the key's principal; it appears as <c>apikey:{Name}</c> in the audit log and in role assignments.</summary>
    public string Name { get; set; } = "";

    /// <summary>
    /// The key's hash, never the key: <c>sha256:{64 hex digits}</c> (or the bare hex), or
    /// <c>pbkdf2-sha256:{iterations}:{salt base64}:{hash base64}</c>.
    /// </summary>
    public string Hash { get; set; } = "";

    /// <summary>Roles of the key, as role claim values: <c>worker</c>, <c>reader:orders</c>, ...</summary>
    public List<string> Roles { get; set; } = new();
}

/// <summary>
/// Role assignments kept in configuration, bound from <c>Scheduler:Authorization</c>; they add to the roles a token or key carries.
/// <code>
/// "Authorization": { "RoleAssignments": [ { "Principal": "{oid or sub, apikey:{name}, or *}", "Role": "reader", "Scope": "*" } ] }
/// </code>
/// </summary>
public sealed class SchedulerAuthorizationOptions
{
    public const string Section = "Scheduler:Authorization";

    public List<RoleAssignmentSettings> RoleAssignments { get; set; } = new();
}

public sealed class RoleAssignmentSettings
{
    /// <summary>The token's <c>oid</c> (else <c>sub</c>) claim, <c>apikey:{name}</c>, or <c>*</c> for every authenticated caller.</summary>
    public string Principal { get; set; } = "";

    /// <summary><c>contributor</c>, <c>worker</c>, <c>reader</c>, or the full role names.</summary>
    public string Role { get; set; } = "";

    /// <summary><c>*</c> (every task hub) or a task hub name.</summary>
    public string Scope { get; set; } = RoleAssignment.AllHubs;
}

/// <summary>
/// TLS for both endpoints, bound from <c>Scheduler:Tls</c>.
/// <code>
/// "Tls": { "CertificatePath": "/certs/scheduler.pfx", "Password": "..." }              // PKCS#12
/// "Tls": { "CertificatePath": "/certs/tls.crt", "KeyPath": "/certs/tls.key" }           // PEM (key optionally encrypted with Password)
/// </code>
/// </summary>
public sealed class TlsSettings
{
    public const string Section = "Scheduler:Tls";

    public string? CertificatePath { get; set; }
    public string? KeyPath { get; set; }
    public string? Password { get; set; }
}

/// <summary>
/// Per-connection and per-request limits, bound from <c>Scheduler:Limits</c>, so one client cannot starve the others.
/// <code>
/// "Limits": { "MaxConcurrentConnections": 10000, "MaxStreamsPerConnection": 1000, "MaxRequestBodyBytes": 8388608,
///             "MaxReceiveMessageBytes": 16777216, "MaxRequestHeadersBytes": 32768 }
/// </code>
/// </summary>
public sealed class LimitsSettings
{
    public const string Section = "Scheduler:Limits";

    /// <summary>Open connections across both endpoints; further connections are refused until one closes.</summary>
    public long? MaxConcurrentConnections { get; set; } = 10_000;

    /// <summary>Concurrent HTTP/2 streams (gRPC calls) on one connection. The .NET SDK opens more connections when it needs more.</summary>
    public int MaxStreamsPerConnection { get; set; } = 1000;

    /// <summary>Largest HTTP request body (JSON API). gRPC messages are limited by <see cref="MaxReceiveMessageBytes"/> instead.</summary>
    public long? MaxRequestBodyBytes { get; set; }

    /// <summary>Largest gRPC message accepted. Default: 16 MiB or 4 x <c>Scheduler:MaxPayloadBytes</c>, whichever is larger.</summary>
    public int? MaxReceiveMessageBytes { get; set; }

    /// <summary>Total size of the request headers (tokens included).</summary>
    public int MaxRequestHeadersBytes { get; set; } = 32 * 1024;
}
