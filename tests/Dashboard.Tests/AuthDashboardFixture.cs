using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using DurableTask.Scheduler.Hosting;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// A real scheduler with API-key authentication (task hubs <c>a</c> and <c>b</c>), SDK workers and clients on both hubs
/// authenticating with a contributor key, and the dashboard in front of it. Keys: reader (every hub), contributor
/// (every hub), worker on hub <c>a</c> only.
/// </summary>
public sealed class AuthDashboardFixture : IAsyncLifetime
{
    public const string ReaderKey = "reader-key-5b1f0c2e9d8a4f7b";
    public const string ContributorKey = "contributor-key-0e6d2a9c4b7f";
    public const string WorkerAKey = "worker-a-key-7c3e1f8a2d5b";
    public const string NoRoleKey = "no-role-key-4a2b6c8d0e1f";

    WebApplication? _scheduler;
    readonly List<IHost> _sdk = [];

    public WebApplication Dashboard { get; private set; } = null!;
    public string DashboardAddress { get; private set; } = "";
    public string ApiAddress { get; private set; } = "";
    public DurableTaskClient ClientA { get; private set; } = null!;
    public DurableTaskClient ClientB { get; private set; } = null!;

    public static string Hash(string key) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    static IEnumerable<string> Key(int index, string name, string key, params string[] roles)
    {
        yield return $"--Scheduler:Authentication:ApiKeys:{index}:Name={name}";
        yield return $"--Scheduler:Authentication:ApiKeys:{index}:Hash={Hash(key)}";
        for (int i = 0; i < roles.Length; i++) yield return $"--Scheduler:Authentication:ApiKeys:{index}:Roles:{i}={roles[i]}";
    }

    public async Task InitializeAsync()
    {
        int grpc = FreePort(), http = FreePort(), web = FreePort();
        _scheduler = SchedulerHost.Build([
            $"--Scheduler:GrpcPort={grpc}", $"--Scheduler:HttpPort={http}", "--Logging:LogLevel:Default=Warning",
            "--DTS_TASK_HUB_NAMES=a,b", "--Scheduler:Store=memory", "--Scheduler:Authentication:Mode=ApiKey",
            .. Key(0, "reader", ReaderKey, "reader"),
            .. Key(1, "ops", ContributorKey, "contributor"),
            .. Key(2, "worker-a", WorkerAKey, "worker:a"),
            .. Key(3, "nobody", NoRoleKey),
        ]);
        await _scheduler.StartAsync();
        ApiAddress = $"http://localhost:{http}/";

        ClientA = await StartSdkAsync($"http://localhost:{grpc}", "a");
        ClientB = await StartSdkAsync($"http://localhost:{grpc}", "b");

        Dashboard = DashboardApp.Build([
            $"--urls=http://127.0.0.1:{web}", $"--Scheduler:ApiAddress={ApiAddress}", "--Logging:LogLevel:Default=Warning",
        ]);
        await Dashboard.StartAsync();
        DashboardAddress = $"http://127.0.0.1:{web}/";
    }

    async Task<DurableTaskClient> StartSdkAsync(string address, string hub)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new HeaderHandler(ContributorKey, hub) { InnerHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } },
        });
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(Orchestrations.Register);
            b.UseGrpc(channel);
        });
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(channel));
        var host = builder.Build();
        await host.StartAsync();
        _sdk.Add(host);
        return host.Services.GetRequiredService<DurableTaskClient>();
    }

    /// <summary>Adds the API key and the task hub to every gRPC call (the plain-http equivalent of call credentials).</summary>
    sealed class HeaderHandler(string key, string hub) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation("x-api-key", key);
            request.Headers.TryAddWithoutValidation("taskhub", hub);
            return base.SendAsync(request, cancellationToken);
        }
    }

    public async Task DisposeAsync()
    {
        if (Dashboard is not null) await Dashboard.DisposeAsync();
        foreach (var host in _sdk)
        {
            await host.StopAsync();
            host.Dispose();
        }

        if (_scheduler is not null) await _scheduler.DisposeAsync();
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
