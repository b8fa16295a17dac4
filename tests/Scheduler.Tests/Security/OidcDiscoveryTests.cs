using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>
/// JWT validation against an issuer's published keys: a local OpenID Connect issuer serves a discovery document and a
/// JWKS; the scheduler is configured with only its metadata address and an audience.
/// </summary>
public sealed class OidcDiscoveryTests : IAsyncLifetime
{
    readonly RSA _signingKey = RSA.Create(2048);
    WebApplication? _issuer;
    string _issuerUrl = "";

    public async Task InitializeAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        _issuerUrl = $"http://127.0.0.1:{port}/";

        var builder = WebApplication.CreateBuilder([$"--urls={_issuerUrl}"]);
        builder.Logging.ClearProviders();
        _issuer = builder.Build();
        var parameters = _signingKey.ExportParameters(includePrivateParameters: false);
        _issuer.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = _issuerUrl,
            ["jwks_uri"] = _issuerUrl + "keys",
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        _issuer.MapGet("/keys", () => Results.Json(new
        {
            keys = new[]
            {
                new { kty = "RSA", use = "sig", alg = "RS256", kid = "published-1", n = Base64UrlEncoder.Encode(parameters.Modulus), e = Base64UrlEncoder.Encode(parameters.Exponent) },
            },
        }));
        await _issuer.StartAsync();
    }

    string Token(string issuer, RSA key, string[] roles) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = issuer,
        Audience = "api://oidc-test",
        Expires = DateTime.UtcNow.AddMinutes(30),
        Claims = new Dictionary<string, object> { ["sub"] = "app-1", ["roles"] = roles },
        SigningCredentials = new SigningCredentials(new RsaSecurityKey(key) { KeyId = "published-1" }, SecurityAlgorithms.RsaSha256),
    });

    [Fact]
    public async Task Tokens_are_checked_against_the_issuers_published_keys()
    {
        await using var scheduler = await SecureSchedulerHost.StartAsync(
        [
            "--Scheduler:Authentication:Mode=Jwt",
            $"--Scheduler:Authentication:Jwt:MetadataAddress={_issuerUrl}.well-known/openid-configuration",
            "--Scheduler:Authentication:Jwt:RequireHttpsMetadata=false",
            "--Scheduler:Authentication:Jwt:Audience=api://oidc-test",
        ]);
        using var channel = GrpcChannel.ForAddress(scheduler.GrpcAddress);
        var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        Task<StatusCode> Hello(string token) => Status(() => client.HelloAsync(new Google.Protobuf.WellKnownTypes.Empty(),
            new Metadata { { "authorization", "Bearer " + token } }).ResponseAsync);

        Assert.Equal(StatusCode.OK, await Hello(Token(_issuerUrl, _signingKey, ["reader"])));
        using var otherKey = RSA.Create(2048);
        Assert.Equal(StatusCode.Unauthenticated, await Hello(Token(_issuerUrl, otherKey, ["reader"])));
        Assert.Equal(StatusCode.Unauthenticated, await Hello(Token("https://someone-else.test/", _signingKey, ["reader"])));
        Assert.Equal(StatusCode.PermissionDenied, await Hello(Token(_issuerUrl, _signingKey, ["Orders.Read"])));
    }

    static async Task<StatusCode> Status(Func<Task> call)
    {
        try
        {
            await call();
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    public async Task DisposeAsync()
    {
        if (_issuer is not null) await _issuer.DisposeAsync();
        _signingKey.Dispose();
    }
}
