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

namespace DurableTask.Scheduler.Tests;

public sealed class SmokeTests : IAsyncLifetime
{
    WebApplication? _app;
    string _address = "";

    public async Task InitializeAsync()
    {
        int grpc = FreePort(), http = FreePort();
        _app = SchedulerHost.Build([$"--Scheduler:GrpcPort={grpc}", $"--Scheduler:HttpPort={http}", "--Logging:LogLevel:Default=Warning"]);
        await _app.StartAsync();
        _address = $"http://localhost:{grpc}";
    }

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
    }

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public async Task HelloSequenceCompletes()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(r =>
            {
                r.AddOrchestratorFunc<string, string>("Hello", async (ctx, input) =>
                {
                    var a = await ctx.CallActivityAsync<string>("Say", "Tokyo");
                    var b2 = await ctx.CallActivityAsync<string>("Say", "London");
                    return a + " " + b2;
                });
                r.AddActivityFunc<string, string>("Say", (ctx, city) => $"Hello, {city}!");
            });
            b.UseGrpc(_address);
        });
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(_address));
        using var host = builder.Build();
        await host.StartAsync();
        var client = host.Services.GetRequiredService<DurableTaskClient>();
        var id = await client.ScheduleNewOrchestrationInstanceAsync("Hello", "x");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var meta = await client.WaitForInstanceCompletionAsync(id, true, cts.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        Assert.Equal("\"Hello, Tokyo! Hello, London!\"", meta.SerializedOutput);
        await host.StopAsync();
    }
}
