using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DurableTask.Scheduler.Security;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>A local token issuer: an HMAC key and an RSA key the scheduler is configured to trust, and keys it does not trust.</summary>
public static class TestTokens
{
    public const string Issuer = "https://issuer.test/";
    public const string Audience = "api://scheduler-test";

    static readonly byte[] HmacKey = RandomNumberGenerator.GetBytes(32);
    static readonly RSA Rsa = RSA.Create(2048);
    static readonly byte[] UntrustedKey = RandomNumberGenerator.GetBytes(32);

    static SigningCredentials Hmac => new(new SymmetricSecurityKey(HmacKey), SecurityAlgorithms.HmacSha256);
    static SigningCredentials RsaCredentials => new(new RsaSecurityKey(Rsa) { KeyId = "test-rsa" }, SecurityAlgorithms.RsaSha256);
    static SigningCredentials Untrusted => new(new SymmetricSecurityKey(UntrustedKey), SecurityAlgorithms.HmacSha256);

    /// <summary>Scheduler settings trusting this issuer's keys.</summary>
    public static IEnumerable<string> JwtSettings =>
    [
        $"--Scheduler:Authentication:Jwt:Issuer={Issuer}",
        $"--Scheduler:Authentication:Jwt:Audience={Audience}",
        $"--Scheduler:Authentication:Jwt:SymmetricKeys:0={Convert.ToBase64String(HmacKey)}",
        $"--Scheduler:Authentication:Jwt:PublicKeys:0={Rsa.ExportSubjectPublicKeyInfoPem()}",
    ];

    public static string Token(string subject, IEnumerable<string>? roles = null, bool rsa = false, string? audience = null,
        string? issuer = null, DateTime? expires = null, bool untrustedKey = false, string? name = null)
    {
        var claims = new Dictionary<string, object> { ["sub"] = subject };
        if (roles is not null) claims["roles"] = roles.ToArray();
        if (name is not null) claims["name"] = name;
        var exp = expires ?? DateTime.UtcNow.AddHours(1);
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Issuer,
            Audience = audience ?? Audience,
            IssuedAt = exp.AddHours(-2),
            NotBefore = exp.AddHours(-2),
            Expires = exp,
            Claims = claims,
            SigningCredentials = untrustedKey ? Untrusted : rsa ? RsaCredentials : Hmac,
        };
        return new JsonWebTokenHandler().CreateToken(descriptor);
    }

    /// <summary>An unsigned token (<c>alg: none</c>).</summary>
    public static string Unsigned(string subject, IEnumerable<string> roles)
    {
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            Expires = DateTime.UtcNow.AddHours(1),
            Claims = new Dictionary<string, object> { ["sub"] = subject, ["roles"] = roles.ToArray() },
        };
        return new JsonWebTokenHandler().CreateToken(descriptor);
    }
}

/// <summary>API keys configured on the test scheduler (hashes only), with the keys the tests present.</summary>
public static class TestApiKeys
{
    public static readonly string ContributorKey = "ck-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
    public static readonly string ReaderOfAKey = "rk-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
    public static readonly string WorkerOfBKey = "wk-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));

    public static IEnumerable<string> Settings =>
    [
        "--Scheduler:Authentication:ApiKeys:0:Name=ops",
        $"--Scheduler:Authentication:ApiKeys:0:Hash={ApiKeyHash.Create(ContributorKey)}",
        "--Scheduler:Authentication:ApiKeys:0:Roles:0=contributor",
        "--Scheduler:Authentication:ApiKeys:1:Name=auditor",
        $"--Scheduler:Authentication:ApiKeys:1:Hash={ApiKeyHash.Create(ReaderOfAKey, iterations: 10_000)}",
        "--Scheduler:Authentication:ApiKeys:1:Roles:0=reader:a",
        "--Scheduler:Authentication:ApiKeys:2:Name=b-worker",
        $"--Scheduler:Authentication:ApiKeys:2:Hash={ApiKeyHash.Create(WorkerOfBKey)}",
        "--Scheduler:Authentication:ApiKeys:2:Roles:0=Durable Task Worker:b",
    ];
}

/// <summary>How a test call presents itself: metadata added to every call.</summary>
public sealed record Credential(string Label, Metadata Headers)
{
    public static Credential None => new("no credentials", new Metadata());
    public static Credential Bearer(string label, string token) => new(label, new Metadata { { "authorization", "Bearer " + token } });
    public static Credential ApiKey(string label, string key) => new(label, new Metadata { { "x-api-key", key } });

    public Metadata For(string? hub)
    {
        var headers = new Metadata();
        foreach (var entry in Headers) headers.Add(entry);
        if (hub is not null) headers.Add("taskhub", hub);
        return headers;
    }

    public override string ToString() => Label;
}

/// <summary>Adds fixed metadata (a credential) to every client call.</summary>
public sealed class HeadersInterceptor(Metadata headers) : Interceptor
{
    CallOptions With(CallOptions options)
    {
        var merged = new Metadata();
        if (options.Headers is { } existing) foreach (var e in existing) merged.Add(e);
        foreach (var e in headers) merged.Add(e);
        return options.WithHeaders(merged);
    }

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation) =>
        continuation(request, new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, With(context.Options)));

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation) =>
        continuation(request, new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, With(context.Options)));

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        BlockingUnaryCallContinuation<TRequest, TResponse> continuation) =>
        continuation(request, new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, With(context.Options)));
}

public static class TestCertificates
{
    /// <summary>A self-signed server certificate for 127.0.0.1 and localhost, valid for a day.</summary>
    public static X509Certificate2 CreateSelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=scheduler-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        // Round-trip through PKCS#12 so the key is usable by the TLS stack on every platform.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx, "test"), "test");
    }

    /// <summary>An HTTP/2-capable handler that trusts exactly <paramref name="certificate"/> (or plain http when null).</summary>
    public static SocketsHttpHandler TrustingHandler(X509Certificate2? certificate)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        if (certificate is not null)
        {
            string thumbprint = certificate.Thumbprint;
            handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
                cert is not null && string.Equals(cert.GetCertHashString(), thumbprint, StringComparison.OrdinalIgnoreCase);
        }

        return handler;
    }
}
