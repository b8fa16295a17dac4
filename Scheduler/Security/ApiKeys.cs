using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace DurableTask.Scheduler.Security;

/// <summary>A stored API key hash: SHA-256 of the key's UTF-8 bytes, or PBKDF2-SHA256 with salt and iterations.</summary>
public sealed class ApiKeyHash
{
    ApiKeyHash(byte[] hash, byte[]? salt, int iterations)
    {
        Hash = hash;
        Salt = salt;
        Iterations = iterations;
    }

    public byte[] Hash { get; }
    public byte[]? Salt { get; }
    public int Iterations { get; }

    /// <summary><c>sha256:{hex}</c>, bare 64-digit hex, or <c>pbkdf2-sha256:{iterations}:{salt base64}:{hash base64}</c>; null when malformed.</summary>
    public static ApiKeyHash? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        text = text.Trim();
        try
        {
            if (text.StartsWith("pbkdf2-sha256:", StringComparison.OrdinalIgnoreCase))
            {
                var parts = text.Split(':');
                if (parts.Length != 4 || !int.TryParse(parts[1], out int iterations) || iterations is < 10_000 or > 10_000_000) return null;
                var salt = Convert.FromBase64String(parts[2]);
                var hash = Convert.FromBase64String(parts[3]);
                return salt.Length >= 8 && hash.Length >= 16 ? new ApiKeyHash(hash, salt, iterations) : null;
            }

            string hex = text.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase) ? text["sha256:".Length..] : text;
            return hex.Length == 64 ? new ApiKeyHash(Convert.FromHexString(hex), null, 0) : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>The value to put in configuration for <paramref name="key"/> (SHA-256, or PBKDF2 with <paramref name="iterations"/> &gt; 0).</summary>
    public static string Create(string key, int iterations = 0)
    {
        if (iterations <= 0) return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(key, salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2-sha256:{iterations}:{Convert.ToBase64String(salt)}:{Convert.ToBase64String(hash)}";
    }

    public bool Matches(string key, byte[] sha256OfKey) => Salt is null
        ? CryptographicOperations.FixedTimeEquals(Hash, sha256OfKey)
        : CryptographicOperations.FixedTimeEquals(Hash, Rfc2898DeriveBytes.Pbkdf2(key, Salt, Iterations, HashAlgorithmName.SHA256, Hash.Length));
}

/// <summary>The configured API keys. Verifications are remembered by the key's SHA-256, so PBKDF2 runs once per distinct key.</summary>
public sealed class ApiKeyStore
{
    const int MaxKeyLength = 1024;
    const int CacheLimit = 4096;
    readonly (ApiKeySettings Settings, ApiKeyHash Hash)[] _keys;
    readonly ConcurrentDictionary<string, ApiKeySettings?> _verified = new(StringComparer.Ordinal);

    public ApiKeyStore(SchedulerSecurity security)
    {
        _keys = security.Authentication.ApiKeys.Select(k => (k, ApiKeyHash.Parse(k.Hash)!)).Where(k => k.Item2 is not null).ToArray();
    }

    public ApiKeySettings? Find(string key)
    {
        if (key.Length is 0 or > MaxKeyLength) return null;
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        string cacheKey = Convert.ToHexString(digest);
        if (_verified.TryGetValue(cacheKey, out var known)) return known;

        ApiKeySettings? found = null;
        foreach (var (settings, hash) in _keys)
        {
            if (hash.Matches(key, digest) && found is null) found = settings;
        }

        if (_verified.Count >= CacheLimit) _verified.Clear();
        _verified[cacheKey] = found;
        return found;
    }
}

public sealed class ApiKeyAuthenticationOptions : AuthenticationSchemeOptions
{
    public string RoleClaimType { get; set; } = "roles";
}

/// <summary>
/// Authenticates <c>x-api-key: {key}</c>, or <c>Authorization: Bearer {key}</c> when the bearer value is not a JWT.
/// The principal is <c>apikey:{Name}</c> with the key's configured roles.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<ApiKeyAuthenticationOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyStore keys)
    : AuthenticationHandler<ApiKeyAuthenticationOptions>(options, logger, encoder)
{
    public const string PrincipalPrefix = "apikey:";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? key = PresentedKey(Request);
        if (key is null) return Task.FromResult(AuthenticateResult.NoResult());
        var found = keys.Find(key);
        if (found is null) return Task.FromResult(AuthenticateResult.Fail("Unknown API key."));

        var claims = new List<Claim>
        {
            new(AccessControl.SubjectClaim, PrincipalPrefix + found.Name),
            new(AccessControl.NameClaim, PrincipalPrefix + found.Name),
        };
        foreach (var role in found.Roles) claims.Add(new Claim(Options.RoleClaimType, role));
        var identity = new ClaimsIdentity(claims, Scheme.Name, AccessControl.NameClaim, Options.RoleClaimType);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    internal static string? PresentedKey(HttpRequest request)
    {
        var header = request.Headers[SchedulerSecurity.ApiKeyHeader];
        if (header.Count > 0) return header[0];
        return BearerValue(request) is { } bearer && !LooksLikeJwt(bearer) ? bearer : null;
    }

    internal static string? BearerValue(HttpRequest request)
    {
        string? authorization = request.Headers.Authorization;
        return authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : null;
    }

    /// <summary>A compact JWS: three base64url segments, the first starting with <c>eyJ</c> (<c>{"</c>).</summary>
    internal static bool LooksLikeJwt(string value) =>
        value.StartsWith("eyJ", StringComparison.Ordinal) && value.AsSpan().Count('.') == 2;
}
