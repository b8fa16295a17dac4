using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Core;
using Grpc.Net.Client;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>
/// TLS end to end: a self-signed certificate made at test time, the scheduler serving gRPC and HTTP over TLS with JWT
/// authentication, and the real SDK connecting with an https address, a channel that trusts the certificate and a bearer
/// token sent through call credentials, exactly as docs/security.md shows.
/// </summary>
public sealed class TlsTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("scheduler-tls-").FullName;
    readonly X509Certificate2 _certificate = TestCertificates.CreateSelfSigned();

    static IEnumerable<string> JwtOnly => ["--Scheduler:Authentication:Mode=Jwt", .. TestTokens.JwtSettings, "--DTS_USE_DYNAMIC_TASK_HUBS=true"];

    /// <summary>The channel an application builds: https, trust for the certificate, a bearer token on every call.</summary>
    static GrpcChannel SecureChannel(string address, X509Certificate2 trusted, Func<string> token)
    {
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert is not null && cert.Thumbprint == trusted.Thumbprint,
        };
        var credentials = CallCredentials.FromInterceptor((_, metadata) =>
        {
            metadata.Add("Authorization", "Bearer " + token());
            return Task.CompletedTask;
        });
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            Credentials = ChannelCredentials.Create(new SslCredentials(), credentials),
        });
    }

    [Fact]
    public async Task The_sdk_runs_an_orchestration_over_tls_with_a_bearer_token()
    {
        string pfx = Path.Combine(_folder, "scheduler.pfx");
        await File.WriteAllBytesAsync(pfx, _certificate.Export(X509ContentType.Pfx, "pfx-password"));
        await using var host = await SecureSchedulerHost.StartAsync(
            [.. JwtOnly, $"--Scheduler:Tls:CertificatePath={pfx}", "--Scheduler:Tls:Password=pfx-password"], _certificate);
        Assert.StartsWith("https://", host.GrpcAddress);

        using var channel = SecureChannel(host.GrpcAddress, _certificate, () => TestTokens.Token("svc-tls", ["worker"]));
        await using (var app = await SdkApp.StartAsync(channel, "tls-hub", worker: true))
        {
            string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Greet", "TLS");
            var state = await app.Client.CompletedAsync(id);
            Assert.Equal("\"Hello, TLS!\"", state.SerializedOutput);
        }

        // Same channel without a token: refused.
        using var anonymous = GrpcChannel.ForAddress(host.GrpcAddress, new GrpcChannelOptions { HttpHandler = TestCertificates.TrustingHandler(_certificate) });
        var client = new Microsoft.DurableTask.Protobuf.TaskHubSidecarService.TaskHubSidecarServiceClient(anonymous);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await client.HelloAsync(new Google.Protobuf.WellKnownTypes.Empty()));
        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);

        // HTTP over TLS; cleartext on the same port is not served.
        using var https = host.CreateHttpClient();
        Assert.Equal("Healthy", await https.GetStringAsync("/healthz"));
        using var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => plain.GetAsync($"http://127.0.0.1:{host.HttpPort}/healthz"));

        // A client that does not trust the certificate cannot connect.
        using var untrusting = GrpcChannel.ForAddress(host.GrpcAddress);
        var untrusted = await Assert.ThrowsAsync<RpcException>(async () =>
            await new Microsoft.DurableTask.Protobuf.TaskHubSidecarService.TaskHubSidecarServiceClient(untrusting).HelloAsync(new Google.Protobuf.WellKnownTypes.Empty()));
        // The client fails the handshake itself (grpc-dotnet reports it as Internal with the TLS error).
        Assert.Contains("SSL", untrusted.Status.DebugException?.ToString() ?? untrusted.Status.Detail, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_pem_certificate_and_key_serve_tls()
    {
        string crt = Path.Combine(_folder, "tls.crt"), key = Path.Combine(_folder, "tls.key");
        await File.WriteAllTextAsync(crt, _certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(key, _certificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());
        await using var host = await SecureSchedulerHost.StartAsync(
            [.. JwtOnly, $"--Scheduler:Tls:CertificatePath={crt}", $"--Scheduler:Tls:KeyPath={key}"], _certificate);

        using var channel = SecureChannel(host.GrpcAddress, _certificate, () => TestTokens.Token("svc-pem", ["reader"]));
        var client = new Microsoft.DurableTask.Protobuf.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        await client.HelloAsync(new Google.Protobuf.WellKnownTypes.Empty());
        var denied = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.StartInstanceAsync(new Microsoft.DurableTask.Protobuf.CreateInstanceRequest { Name = "Greet" }));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
    }

    [Fact]
    public void A_certificate_without_its_key_is_refused_at_start()
    {
        string crt = Path.Combine(_folder, "only.crt");
        File.WriteAllText(crt, _certificate.ExportCertificatePem());
        var error = Assert.ThrowsAny<Exception>(() => DurableTask.Scheduler.Hosting.SchedulerHost.Build(
            ["--Scheduler:GrpcPort=0", "--Scheduler:HttpPort=0", $"--Scheduler:Tls:CertificatePath={crt}"]));
        Assert.Contains("Scheduler:Tls", error.Message);
    }

    public void Dispose()
    {
        _certificate.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
