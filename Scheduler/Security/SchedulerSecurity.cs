using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.IdentityModel.Tokens;

namespace DurableTask.Scheduler.Security;

[Flags]
public enum AuthenticationModes
{
    None = 0,
    Jwt = 1,
    ApiKey = 2,
}

/// <summary>The validated security settings the scheduler runs with; built once at start, refusing unsafe or broken setups.</summary>
public sealed class SchedulerSecurity
{
    public const string JwtScheme = "Jwt";
    public const string ApiKeyScheme = "ApiKey";
    public const string SelectorScheme = "Scheduler";
    public const string ApiKeyHeader = "x-api-key";

    SchedulerSecurity(SchedulerAuthenticationOptions authentication, AuthenticationModes modes, IReadOnlyList<(string Principal, RoleAssignment Assignment)> assignments,
        IReadOnlyList<SecurityKey> signingKeys, IReadOnlyList<string> audiences, IReadOnlyList<string> issuers, LimitsSettings limits)
    {
        Authentication = authentication;
        Modes = modes;
        ConfiguredAssignments = assignments;
        SigningKeys = signingKeys;
        Audiences = audiences;
        Issuers = issuers;
        Limits = limits;
    }

    public SchedulerAuthenticationOptions Authentication { get; }
    public AuthenticationModes Modes { get; }
    public bool Enabled => Modes != AuthenticationModes.None;
    public IReadOnlyList<(string Principal, RoleAssignment Assignment)> ConfiguredAssignments { get; }
    public IReadOnlyList<SecurityKey> SigningKeys { get; }
    public IReadOnlyList<string> Audiences { get; }
    public IReadOnlyList<string> Issuers { get; }
    public LimitsSettings Limits { get; }

    /// <summary>Largest JSON API request body.</summary>
    public long HttpBodyLimit(Configuration.SchedulerOptions options) => Limits.MaxRequestBodyBytes ?? Math.Max(8L * 1024 * 1024, 4L * options.MaxPayloadBytes);

    /// <summary>Largest gRPC request body: one message of the largest accepted size plus its 5-byte frame header.</summary>
    public long GrpcBodyLimit(Configuration.SchedulerOptions options) =>
        (Limits.MaxReceiveMessageBytes ?? Math.Max(16 * 1024 * 1024, options.MaxPayloadBytes * 4)) + 5L;

    /// <summary>Reads and validates <c>Scheduler:Authentication</c>, <c>Scheduler:Authorization</c> and <c>Scheduler:Limits</c>.</summary>
    public static SchedulerSecurity Read(IConfiguration configuration, string bindAddress)
    {
        var authentication = new SchedulerAuthenticationOptions();
        configuration.GetSection(SchedulerAuthenticationOptions.Section).Bind(authentication);
        var authorization = new SchedulerAuthorizationOptions();
        configuration.GetSection(SchedulerAuthorizationOptions.Section).Bind(authorization);
        var limits = new LimitsSettings();
        configuration.GetSection(LimitsSettings.Section).Bind(limits);

        var modes = ParseModes(authentication.Mode);
        if (modes == AuthenticationModes.None && !IsLoopback(bindAddress) && !authentication.AllowAnonymousOnNetwork)
        {
            throw new InvalidOperationException(
                $"Refusing to start: Scheduler:BindAddress is '{bindAddress}', which is reachable from the network, but authentication is off " +
                "(Scheduler:Authentication:Mode is None or unset). Configure authentication (Scheduler:Authentication:Mode=Jwt, ApiKey or Jwt,ApiKey), " +
                "bind to localhost, or set Scheduler:Authentication:AllowAnonymousOnNetwork=true to accept anonymous callers on purpose.");
        }

        var jwt = authentication.Jwt;
        var audiences = Merge(jwt.Audiences, jwt.Audience);
        var issuers = Merge(jwt.Issuers, jwt.Issuer);
        var keys = new List<SecurityKey>();
        if (modes.HasFlag(AuthenticationModes.Jwt))
        {
            if (audiences.Count == 0)
                throw Invalid("Scheduler:Authentication:Jwt:Audiences (or :Audience) is required when JWT authentication is on.");
            foreach (var key in jwt.SymmetricKeys) keys.Add(SymmetricKey(key));
            foreach (var key in jwt.PublicKeys) keys.Add(PublicKey(key));
            bool discovery = !string.IsNullOrWhiteSpace(jwt.Authority) || !string.IsNullOrWhiteSpace(jwt.MetadataAddress);
            if (!discovery && keys.Count == 0)
                throw Invalid("JWT authentication needs Scheduler:Authentication:Jwt:Authority (or :MetadataAddress) or signing keys (:SymmetricKeys, :PublicKeys).");
            if (!discovery && issuers.Count == 0)
                throw Invalid("Scheduler:Authentication:Jwt:Issuers (or :Issuer) is required when tokens are checked against configured keys.");
            if (string.IsNullOrWhiteSpace(jwt.RoleClaimType))
                throw Invalid("Scheduler:Authentication:Jwt:RoleClaimType must not be empty.");
        }

        if (modes.HasFlag(AuthenticationModes.ApiKey))
        {
            if (authentication.ApiKeys.Count == 0)
                throw Invalid("API key authentication is on but Scheduler:Authentication:ApiKeys is empty.");
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var key in authentication.ApiKeys)
            {
                if (string.IsNullOrWhiteSpace(key.Name) || key.Name.Length > 100)
                    throw Invalid("Every entry of Scheduler:Authentication:ApiKeys needs a Name of 1-100 characters.");
                if (!names.Add(key.Name)) throw Invalid($"API key name '{key.Name}' is used twice.");
                if (ApiKeyHash.Parse(key.Hash) is null)
                    throw Invalid($"API key '{key.Name}': Hash must be 'sha256:<64 hex digits>' or 'pbkdf2-sha256:<iterations>:<salt base64>:<hash base64>'.");
                foreach (var role in key.Roles)
                {
                    if (!Roles.TryParseAssignment(role, out var parsed) || !ValidScope(parsed.Scope))
                        throw Invalid($"API key '{key.Name}': role '{role}' is not 'contributor', 'worker' or 'reader', optionally followed by ':<task hub>'.");
                }
            }
        }

        var assignments = new List<(string, RoleAssignment)>();
        foreach (var a in authorization.RoleAssignments)
        {
            if (string.IsNullOrWhiteSpace(a.Principal))
                throw Invalid("Every entry of Scheduler:Authorization:RoleAssignments needs a Principal.");
            if (!Roles.TryParseRole(a.Role, out var role))
                throw Invalid($"Role assignment for '{a.Principal}': role '{a.Role}' is not contributor, worker or reader.");
            string scope = string.IsNullOrWhiteSpace(a.Scope) ? RoleAssignment.AllHubs : a.Scope.Trim();
            if (!ValidScope(scope))
                throw Invalid($"Role assignment for '{a.Principal}': scope '{scope}' is not '*' or a task hub name.");
            assignments.Add((a.Principal.Trim(), new RoleAssignment(role, scope)));
        }

        if (limits.MaxStreamsPerConnection <= 0) throw Invalid("Scheduler:Limits:MaxStreamsPerConnection must be positive.");
        if (limits.MaxConcurrentConnections is <= 0) throw Invalid("Scheduler:Limits:MaxConcurrentConnections must be positive.");
        if (limits.MaxRequestBodyBytes is <= 0) throw Invalid("Scheduler:Limits:MaxRequestBodyBytes must be positive.");
        if (limits.MaxReceiveMessageBytes is <= 0) throw Invalid("Scheduler:Limits:MaxReceiveMessageBytes must be positive.");
        if (limits.MaxRequestHeadersBytes <= 0) throw Invalid("Scheduler:Limits:MaxRequestHeadersBytes must be positive.");

        return new SchedulerSecurity(authentication, modes, assignments, keys, audiences, issuers, limits);
    }

    public static AuthenticationModes ParseModes(string? mode)
    {
        var modes = AuthenticationModes.None;
        if (string.IsNullOrWhiteSpace(mode)) return modes;
        foreach (var part in mode.Split([',', '+', ';', ' '], StringSplitOptions.RemoveEmptyEntries))
        {
            modes |= part.ToLowerInvariant() switch
            {
                "none" => AuthenticationModes.None,
                "jwt" or "bearer" => AuthenticationModes.Jwt,
                "apikey" or "apikeys" => AuthenticationModes.ApiKey,
                _ => throw Invalid($"Scheduler:Authentication:Mode '{mode}' is not supported: use None, Jwt, ApiKey or Jwt,ApiKey."),
            };
        }

        return modes;
    }

    /// <summary><c>localhost</c> or a loopback IP address.</summary>
    public static bool IsLoopback(string bindAddress) =>
        string.Equals(bindAddress, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(bindAddress, out var ip) && IPAddress.IsLoopback(ip));

    static bool ValidScope(string scope) => scope == RoleAssignment.AllHubs || TaskHubRegistry.IsValidName(scope);

    static List<string> Merge(List<string> list, string? single)
    {
        var all = list.Where(s => !string.IsNullOrWhiteSpace(s)).Select(s => s.Trim()).ToList();
        if (!string.IsNullOrWhiteSpace(single)) all.Add(single.Trim());
        return all.Distinct(StringComparer.Ordinal).ToList();
    }

    static SecurityKey SymmetricKey(string base64)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(base64.Trim());
        }
        catch (FormatException)
        {
            throw Invalid("Scheduler:Authentication:Jwt:SymmetricKeys holds a value that is not base64.");
        }

        if (bytes.Length < 32) throw Invalid("Scheduler:Authentication:Jwt:SymmetricKeys: a key must have at least 32 bytes (256 bits).");
        return new SymmetricSecurityKey(bytes);
    }

    static SecurityKey PublicKey(string value)
    {
        string pem = value.Contains("-----BEGIN", StringComparison.Ordinal) ? value : ReadFile(value);
        if (!PemEncoding.TryFind(pem, out var field))
            throw Invalid("Scheduler:Authentication:Jwt:PublicKeys holds a value that is not PEM.");
        string label = pem[field.Label];
        if (label == "CERTIFICATE")
        {
            var der = Convert.FromBase64String(pem[field.Base64Data]);
            return new X509SecurityKey(X509CertificateLoader.LoadCertificate(der));
        }

        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return new RsaSecurityKey(rsa);
        }
        catch (ArgumentException)
        {
        }
        catch (CryptographicException)
        {
        }

        try
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            throw Invalid($"Scheduler:Authentication:Jwt:PublicKeys: '{label}' is not an RSA or EC public key or a certificate.");
        }
    }

    static string ReadFile(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw Invalid($"Scheduler:Authentication:Jwt:PublicKeys: '{path}' is neither PEM text nor a readable file ({ex.Message}).");
        }
    }

    static InvalidOperationException Invalid(string message) => new(message);
}
