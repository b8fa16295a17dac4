using DurableTask.Scheduler.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.IdentityModel.Tokens;

namespace DurableTask.Scheduler.Security;

/// <summary>
/// Wires authentication, authorization, the gRPC method access checks (bound into each method by the protocol's
/// strict binder, <c>AddStrictMessageBinding</c>), audit and connection limits.
/// </summary>
public static class SecurityExtensions
{
    /// <summary>Reads and validates the security settings (refusing anonymous access on the network unless allowed) and registers the services.</summary>
    public static WebApplicationBuilder AddSchedulerSecurity(this WebApplicationBuilder builder, SchedulerOptions options)
    {
        var security = SchedulerSecurity.Read(builder.Configuration, options.BindAddress);
        var services = builder.Services;
        services.AddSingleton(security);
        services.AddSingleton(new SchedulerTls(TlsCertificate.Load(builder.Configuration)));
        services.AddSingleton<AccessControl>();
        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<MethodSecurity>();
        services.AddSingleton<IAuthorizationHandler, PermissionAuthorizationHandler>();
        services.AddAuthorization();

        var limits = security.Limits;
        services.AddGrpc(o =>
        {
            if (limits.MaxReceiveMessageBytes is { } max) o.MaxReceiveMessageSize = max;
        });

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxConcurrentConnections = limits.MaxConcurrentConnections;
            k.Limits.MaxConcurrentUpgradedConnections = limits.MaxConcurrentConnections;
            k.Limits.Http2.MaxStreamsPerConnection = limits.MaxStreamsPerConnection;
            k.Limits.MaxRequestHeadersTotalSize = limits.MaxRequestHeadersBytes;
            k.Limits.Http2.MaxRequestHeaderFieldSize = Math.Max(limits.MaxRequestHeadersBytes, 16 * 1024);
            // Per request, HttpSecurityMiddleware applies the JSON API's body limit or the gRPC message limit.
            k.Limits.MaxRequestBodySize = Math.Max(security.HttpBodyLimit(options), security.GrpcBodyLimit(options));
        });

        // With authentication off there is nothing to authenticate: no handlers, and no authentication middleware
        // doing per-request work for nothing (every caller is anonymous and may do everything).
        if (!security.Enabled) return builder;
        var authentication = services.AddAuthentication(o =>
        {
            o.DefaultScheme = SchedulerSecurity.SelectorScheme;
            o.DefaultChallengeScheme = SchedulerSecurity.SelectorScheme;
            o.DefaultForbidScheme = SchedulerSecurity.SelectorScheme;
        });

        var modes = security.Modes;
        authentication.AddPolicyScheme(SchedulerSecurity.SelectorScheme, "JWT bearer token or API key", o =>
        {
            o.ForwardDefaultSelector = context => SelectScheme(context.Request, modes);
        });

        var jwt = security.Authentication.Jwt;
        if (modes.HasFlag(AuthenticationModes.Jwt))
        {
            authentication.AddJwtBearer(SchedulerSecurity.JwtScheme, o =>
            {
                o.MapInboundClaims = false;
                if (!string.IsNullOrWhiteSpace(jwt.Authority)) o.Authority = jwt.Authority;
                if (!string.IsNullOrWhiteSpace(jwt.MetadataAddress)) o.MetadataAddress = jwt.MetadataAddress;
                o.RequireHttpsMetadata = jwt.RequireHttpsMetadata;
                o.IncludeErrorDetails = false;
                o.TokenValidationParameters = new TokenValidationParameters
                {
                    ValidateIssuer = true,
                    ValidIssuers = security.Issuers.Count > 0 ? security.Issuers : null,
                    ValidateAudience = true,
                    ValidAudiences = security.Audiences,
                    ValidateLifetime = true,
                    RequireExpirationTime = true,
                    RequireSignedTokens = true,
                    ValidateIssuerSigningKey = true,
                    IssuerSigningKeys = security.SigningKeys.Count > 0 ? security.SigningKeys : null,
                    ClockSkew = jwt.ClockSkew,
                    NameClaimType = AccessControl.NameClaim,
                    RoleClaimType = jwt.RoleClaimType,
                };
            });
        }

        if (modes.HasFlag(AuthenticationModes.ApiKey))
        {
            authentication.AddScheme<ApiKeyAuthenticationOptions, ApiKeyAuthenticationHandler>(SchedulerSecurity.ApiKeyScheme, o =>
            {
                o.RoleClaimType = jwt.RoleClaimType;
            });
        }

        return builder;
    }

    /// <summary>Adds the audit, authentication, authorization and API policy middleware; call before mapping endpoints.</summary>
    public static WebApplication UseSchedulerSecurity(this WebApplication app)
    {
        var security = app.Services.GetRequiredService<SchedulerSecurity>();
        var options = app.Services.GetRequiredService<SchedulerOptions>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(AuditLog.Category);
        bool tls = app.Services.GetService<SchedulerTls>()?.Certificate is not null;
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            SecurityLogs.Summary(logger, security.Modes, tls ? "on" : "off");
            if (!SchedulerSecurity.IsLoopback(options.BindAddress))
            {
                if (!security.Enabled) SecurityLogs.AnonymousOnNetwork(logger, options.BindAddress);
                else if (!tls) SecurityLogs.CredentialsWithoutTls(logger, options.BindAddress);
            }
        });

        app.UseMiddleware<HttpSecurityMiddleware>();
        if (security.Enabled) app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    static string SelectScheme(HttpRequest request, AuthenticationModes modes)
    {
        bool jwt = modes.HasFlag(AuthenticationModes.Jwt);
        bool apiKey = modes.HasFlag(AuthenticationModes.ApiKey);
        if (apiKey && request.Headers.ContainsKey(SchedulerSecurity.ApiKeyHeader)) return SchedulerSecurity.ApiKeyScheme;
        if (jwt && apiKey && ApiKeyAuthenticationHandler.BearerValue(request) is { } bearer && !ApiKeyAuthenticationHandler.LooksLikeJwt(bearer))
            return SchedulerSecurity.ApiKeyScheme;
        return jwt ? SchedulerSecurity.JwtScheme : SchedulerSecurity.ApiKeyScheme;
    }
}

/// <summary>The server certificate, when TLS is configured.</summary>
public sealed record SchedulerTls(System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate);
