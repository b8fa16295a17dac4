using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace DurableTask.AppHost.Tests;

/// <summary>The topology as `dotnet run --project AppHost` starts it on a machine without a container runtime.</summary>
[Collection(AppHostCollection.Name)]
public sealed class RunModeTests(AppHostFixture fixture)
{
    [Fact]
    public async Task EveryResourceBecomesHealthy()
    {
        foreach (var name in AppHostFixture.Resources)
        {
            var state = await fixture.WaitHealthyAsync(name);
            Assert.Equal(KnownResourceStates.Running, state.Snapshot.State?.Text);
            Assert.Equal(HealthStatus.Healthy, state.Snapshot.HealthStatus);
            Assert.NotEmpty(state.Snapshot.HealthReports);
        }
    }

    [Fact]
    public async Task StoreIsTheLocalRedisServerWithTheContainersConnectionStringShape()
    {
        await fixture.WaitHealthyAsync("store");
        Assert.IsType<RedisServerResource>(fixture.Resource("store"));

        var connectionString = await fixture.App.GetConnectionStringAsync("store");
        Assert.NotNull(connectionString);
        Assert.Matches(@"^localhost:\d+,password=[A-Za-z0-9]{22,}$", connectionString);

        await using var redis = await ConnectionMultiplexer.ConnectAsync(connectionString);
        var db = redis.GetDatabase();
        var key = $"apphost-tests:{Guid.NewGuid():N}";
        await db.StringSetAsync(key, "stored", TimeSpan.FromMinutes(1));
        Assert.Equal("stored", (string?)await db.StringGetAsync(key));

        var withoutPassword = connectionString[..connectionString.IndexOf(',')];
        await Assert.ThrowsAnyAsync<RedisException>(async () =>
        {
            await using var anonymous = await ConnectionMultiplexer.ConnectAsync($"{withoutPassword},connectTimeout=2000");
            await anonymous.GetDatabase().StringGetAsync(key);
        });
    }

    [Fact]
    public async Task SchedulerAnswersHealthzOnItsHttpEndpoint()
    {
        await fixture.WaitHealthyAsync("scheduler");
        using var http = fixture.App.CreateHttpClient("scheduler", "http");

        using var response = await http.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task SchedulerGetsItsPortsTaskHubsStoreAndTheRedisConnection()
    {
        await fixture.WaitHealthyAsync("scheduler");
        var env = await fixture.EnvironmentOfAsync("scheduler");

        // DCP picks the ports as it launches the process; the placeholder names the endpoint each port belongs to.
        Assert.Contains("\"scheduler-grpc\"", env["Scheduler__GrpcPort"]);
        Assert.Contains("\"scheduler-http\"", env["Scheduler__HttpPort"]);
        Assert.Equal("localhost", env["Scheduler__BindAddress"]);
        Assert.Equal("redis", env["Scheduler__Store"]);
        Assert.Equal("default", env["DTS_TASK_HUB_NAMES"]);
        Assert.Equal(await fixture.App.GetConnectionStringAsync("store"), env["ConnectionStrings__store"]);
    }

    [Theory]
    [InlineData("dashboard")]
    [InlineData("samples")]
    public async Task AppsFindBothSchedulerEndpointsThroughServiceDiscovery(string app)
    {
        await fixture.WaitHealthyAsync(app);

        var env = await fixture.EnvironmentOfAsync(app);

        Assert.Equal(fixture.App.GetEndpoint("scheduler", "grpc"), new Uri(env["services__scheduler__grpc__0"]));
        Assert.Equal(fixture.App.GetEndpoint("scheduler", "http"), new Uri(env["services__scheduler__http__0"]));
    }

    [Fact]
    public async Task AnOrchestrationCompletesThroughTheSchedulersGrpcEndpoint()
    {
        await fixture.WaitHealthyAsync("scheduler");
        // The address the samples get from service discovery: DCP's proxy in front of the scheduler's HTTP/2 listener.
        var address = fixture.App.GetEndpoint("scheduler", "grpc").ToString();

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddDurableTaskWorker(worker =>
        {
            worker.AddTasks(tasks =>
            {
                tasks.AddOrchestratorFunc<string, string>("GreetCity", (ctx, city) => ctx.CallActivityAsync<string>("Greeting", city));
                tasks.AddActivityFunc<string, string>("Greeting", (_, city) => $"Hello, {city}!");
            });
            worker.UseGrpc(address);
        });
        builder.Services.AddDurableTaskClient(client => client.UseGrpc(address));
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var client = host.Services.GetRequiredService<DurableTaskClient>();
            var id = await client.ScheduleNewOrchestrationInstanceAsync("GreetCity", "Lisbon");
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

            var instance = await client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);

            Assert.Equal(OrchestrationRuntimeStatus.Completed, instance.RuntimeStatus);
            Assert.Equal("Hello, Lisbon!", instance.ReadOutputAs<string>());
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
