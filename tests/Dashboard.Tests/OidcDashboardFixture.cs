using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DurableTask.Scheduler.Hosting;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// OpenID Connect end to end: a local identity provider (<see cref="TestIdentityProvider"/>), a scheduler validating that
/// provider's access tokens (JWT mode with discovery, task hubs <c>a</c> and <c>b</c>), an SDK worker and client on hub
/// <c>a</c> with an application token (contributor), and the dashboard signing people in at the provider. The dashboard
/// is served over https with a self-signed certificate made here, as it would be in production: the sign-in's
/// correlation and nonce cookies are Secure.
/// </summary>
public sealed class OidcDashboardFixture : IAsyncLifetime
{
    public static readonly TestIdentityProvider.User Reader = new("u-alice", "Alice Reader", ["Durable Task Data Reader:a"]);
    public static readonly TestIdentityProvider.User Contributor = new("u-bob", "Bob Operator", ["contributor"]);

    WebApplication? _scheduler;
    IHost? _sdk;
    X509Certificate2? _certificate;

    public TestIdentityProvider Provider { get; private set; } = null!;
    public WebApplication Dashboard { get; private set; } = null!;
    public string DashboardAddress { get; private set; } = "";
    public string ApiAddress { get; private set; } = "";
    public DurableTaskClient ClientA { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Provider = await TestIdentityProvider.StartAsync();
        Provider.AddUser(Reader);
        Provider.AddUser(Contributor);

        int grpc = AuthDashboardFixture.FreePort(), http = AuthDashboardFixture.FreePort(), web = AuthDashboardFixture.FreePort();
        _scheduler = SchedulerHost.Build([
            $"--Scheduler:GrpcPort={grpc}", $"--Scheduler:HttpPort={http}", "--Logging:LogLevel:Default=Warning",
            "--DTS_TASK_HUB_NAMES=a,b", "--Scheduler:Store=memory", "--Scheduler:Authentication:Mode=Jwt",
            $"--Scheduler:Authentication:Jwt:Authority={Provider.Issuer}",
            "--Scheduler:Authentication:Jwt:RequireHttpsMetadata=false",
            $"--Scheduler:Authentication:Jwt:Audiences:0={TestIdentityProvider.SchedulerAudience}",
        ]);
        await _scheduler.StartAsync();
        ApiAddress = $"http://localhost:{http}/";

        var appToken = Provider.AccessToken("orders-app", "orders app", "contributor");
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var channel = GrpcChannel.ForAddress($"http://localhost:{grpc}", new GrpcChannelOptions
        {
            HttpHandler = new BearerHandler(appToken, "a") { InnerHandler = new SocketsHttpHandler() },
        });
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(Orchestrations.Register);
            b.UseGrpc(channel);
        });
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(channel));
        _sdk = builder.Build();
        await _sdk.StartAsync();
        ClientA = _sdk.Services.GetRequiredService<DurableTaskClient>();

        _certificate = SelfSignedCertificate();
        DashboardAddress = $"https://127.0.0.1:{web}/";
        Dashboard = DashboardApp.Build([
            $"--urls={DashboardAddress}", $"--Scheduler:ApiAddress={ApiAddress}", "--Logging:LogLevel:Default=Warning",
            "--Dashboard:Authentication:Mode=Oidc", $"--Dashboard:Authentication:Authority={Provider.Issuer}",
            "--Dashboard:Authentication:RequireHttpsMetadata=false",
            $"--Dashboard:Authentication:ClientId={TestIdentityProvider.ClientId}",
            $"--Dashboard:Authentication:ClientSecret={TestIdentityProvider.ClientSecret}",
            $"--Dashboard:Authentication:Scopes:0={TestIdentityProvider.SchedulerScope}",
        ], b => b.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(h => h.ServerCertificate = _certificate)));
        await Dashboard.StartAsync();
    }

    static X509Certificate2 SelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        // Through PKCS#12 so the private key is usable by the TLS stack on every platform.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Adds the bearer token and the task hub to every gRPC call (the plain-http equivalent of call credentials).</summary>
    sealed class BearerHandler(string token, string hub) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation("authorization", "Bearer " + token);
            request.Headers.TryAddWithoutValidation("taskhub", hub);
            return base.SendAsync(request, cancellationToken);
        }
    }

    public async Task DisposeAsync()
    {
        if (Dashboard is not null) await Dashboard.DisposeAsync();
        if (_sdk is not null)
        {
            await _sdk.StopAsync();
            _sdk.Dispose();
        }

        if (_scheduler is not null) await _scheduler.DisposeAsync();
        if (Provider is not null) await Provider.DisposeAsync();
        _certificate?.Dispose();
    }
}
