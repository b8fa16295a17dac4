using System.Net;
using System.Net.Sockets;
using DurableTask.Scheduler.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// A real scheduler on free ports, a worker and client of the real .NET SDK connected to it over gRPC, and the dashboard
/// pointing at the scheduler's HTTP API. Shared by every test of the collection.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    WebApplication? _scheduler;
    WebApplication? _dashboard;
    IHost? _sdk;

    public HttpClient Api { get; private set; } = null!;
    public DurableTaskClient Client { get; private set; } = null!;
    public string DashboardAddress { get; private set; } = "";
    public string ApiAddress { get; private set; } = "";
    public string GrpcAddress { get; private set; } = "";

    public async Task InitializeAsync()
    {
        int grpc = FreePort(), http = FreePort(), web = FreePort();
        _scheduler = SchedulerHost.Build([
            $"--Scheduler:GrpcPort={grpc}", $"--Scheduler:HttpPort={http}", "--Logging:LogLevel:Default=Warning",
            "--Scheduler:MaxPayloadBytes=65536", "--DTS_TASK_HUB_NAMES=default,sales", "--Scheduler:Store=memory",
        ]);
        await _scheduler.StartAsync();
        ApiAddress = $"http://localhost:{http}/";
        Api = new HttpClient { BaseAddress = new Uri(ApiAddress), Timeout = TimeSpan.FromSeconds(30) };

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var address = GrpcAddress = $"http://localhost:{grpc}";
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(Orchestrations.Register);
            b.Configure(o => o.EnableEntitySupport = true);
            b.UseGrpc(address);
        });
        builder.Services.AddDurableTaskClient(b =>
        {
            b.Configure(o => o.EnableEntitySupport = true);
            b.UseGrpc(address);
        });
        _sdk = builder.Build();
        await _sdk.StartAsync();
        Client = _sdk.Services.GetRequiredService<DurableTaskClient>();

        _dashboard = DashboardApp.Build([
            $"--urls=http://127.0.0.1:{web}", $"--Scheduler:ApiAddress={ApiAddress}", "--Logging:LogLevel:Default=Warning",
        ]);
        await _dashboard.StartAsync();
        DashboardAddress = $"http://127.0.0.1:{web}/";
    }

    public async Task DisposeAsync()
    {
        Api?.Dispose();
        if (_dashboard is not null) await _dashboard.DisposeAsync();
        if (_sdk is not null)
        {
            await _sdk.StopAsync();
            _sdk.Dispose();
        }

        if (_scheduler is not null) await _scheduler.DisposeAsync();
    }

    /// <summary>Waits for the instance to finish (or fails the test after 30 s).</summary>
    public async Task<OrchestrationMetadata> CompleteAsync(string instanceId)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await Client.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs: true, cts.Token);
    }

    public async Task<OrchestrationMetadata> StartedAsync(string instanceId)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await Client.WaitForInstanceStartAsync(instanceId, getInputsAndOutputs: true, cts.Token);
    }

    /// <summary>Polls until the condition holds (for state the SDK has no waiter for), failing after 30 s.</summary>
    public static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFixture>
{
    public const string Name = "dashboard";
}
